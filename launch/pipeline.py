"""Entry point for the whole ATTEMPT pipeline under any launcher (see attempt_dist/library/pipeline.py).

    deepspeed --num_gpus 2 launch/pipeline.py --model t5-base --sources mnli,sst2,qqp,qnli \
        --targets boolq,cb,rte --data-dir D --output-dir O
"""

import sys

from attempt_dist.library.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
