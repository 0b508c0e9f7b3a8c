"""Entry point for the DeepSpeed launcher, torchrun and plain python (one rank).

    deepspeed --num_gpus 2 launch/train.py --model t5-3b --method attempt --tasks boolq \
        --source-prompts runs/t5-3b/prompts --ds-config ds_configs/zero3_offload.json --gpu-mem-cap 24GiB
"""

import sys

from attempt_dist.errors import ends_on_ctrl_c
from attempt_dist.training.recipe import main

if __name__ == "__main__":
    sys.exit(ends_on_ctrl_c(main)())
