"""Train from a parameter file: the same as ``hhlib train`` (hhlib.cli), kept for existing scripts.

    python scripts/train.py params/fashion_mnist/02_train.yaml bits=32 seeds=[0]
    torchrun --nproc_per_node 4 scripts/train.py params/cifar10/02_train.yaml batch_size=256

The file is a notebook-02 parameter file (one run per code length x seed) or a YAML file of
TrainConfig fields; each ``key=value`` overrides one value (parsed as YAML).
"""

import sys

from hhlib.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
