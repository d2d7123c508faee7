#!/bin/sh
# ImageNet-1k training with the paper's recipes. Rerun this script after a kill:
# --resume auto continues each run from its last epoch (finished runs only print their result)
set -e
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_a --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_a --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_b --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_b --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_c --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_c --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_d --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_d --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_e --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_e --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model efficientnet_b0 --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/efficientnet_b0 --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model efficientnet_b0_giant_m4 --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/efficientnet_b0_giant_m4 --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model ghostnet_a --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/ghostnet_a --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model ghostnet_100 --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/ghostnet_100 --resume auto
torchrun --standalone --nproc_per_node=8 -m rubik train --model resnet50 --recipe resnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/resnet50 --resume auto
