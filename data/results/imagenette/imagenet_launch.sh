#!/bin/sh
# ImageNet-1k training with the paper's recipes (resumable: --resume)
set -e
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_a --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_a --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_b --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_b --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_c --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_c --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_d --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_d --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model tinynet_e --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/tinynet_e --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model efficientnet_b0 --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/efficientnet_b0 --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model efficientnet_b0_giant_m4 --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/efficientnet_b0_giant_m4 --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model ghostnet_a --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/ghostnet_a --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model ghostnet_100 --recipe efficientnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/ghostnet_100 --resume
torchrun --standalone --nproc_per_node=8 -m rubik train --model resnet50 --recipe resnet --dataset imagenet --data /path/to/imagenet --batch-size 128 --out runs/imagenet/resnet50 --resume
