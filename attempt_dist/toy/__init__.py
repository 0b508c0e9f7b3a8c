"""The toy world's backbone: t5-toy, pretrained here (pretrain.py) on the toy source tasks
(attempt_dist/tasks/toy.py) plus span corruption; its weights ship in assets/t5-toy."""
