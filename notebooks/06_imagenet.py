# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 06 · TinyNet, GhostNet and ResNet on ImageNet
#
# Full-scale training is a GPU job (the paper: 450 epochs on 8 V100s for each TinyNet). This
# notebook (1) writes the `torchrun` launch commands with the paper's recipes, (2) evaluates released
# or trained checkpoints given in `checkpoints` (`{model: path}`; timm-format TinyNet weights load
# directly), and (3) assembles the appendix comparison (GhostNet-A..D, TinyNet-A..E vs baselines)
# from the paper's numbers and whatever results exist.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
imagenet_dir = None
checkpoints = {}
released_weights = True
weights_dir = None
eval_per_class = None
nproc_per_node = 8
device = 'cpu'
data_dir = None
dataset = 'imagenette'
results_dir = None

# %%
# %matplotlib inline
import warnings

import pandas as pd
from rubik import plots
from rubik import reproduce as R

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine
pd.set_option("display.max_columns", 30, "display.width", 160)
run = R.RunDir(run_dir)
# data_dir None: $RUBIK_DATA_DIR, else ../shared/datasets/imagenette beside the repository
data_dir = R.find_data_dir(data_dir, dataset, required=bool(checkpoints) and not imagenet_dir)
run

# %%
from rubik.paper import TINYNETS, launch_commands, launch_script

models = list(TINYNETS) + ["efficientnet_b0", "efficientnet_b0_giant_m4", "ghostnet_a", "ghostnet_100", "resnet50"]
cmds = launch_commands(models, data=imagenet_dir or "/path/to/imagenet", nproc_per_node=nproc_per_node)
script = run.path("imagenet_launch.sh")
script.write_text(launch_script(cmds))   # one script for the first run and every rerun after a kill
print(f"launch script: {script}")
run.table(cmds, "imagenet_launch_commands")

# %% [markdown]
# ## Our models vs the paper's numbers (architecture check)
# Dials, input size, parameters and FLOPs (analytic count at 1000 classes) of every registered model
# next to the numbers printed in the paper / official READMEs.

# %%
from rubik.paper import registry_table

reg = registry_table()
reg["params_vs_paper_%"] = 100 * (reg.params / 1e6 / reg.paper_params_m - 1)
reg["flops_vs_paper_%"] = 100 * (reg.flops / 1e6 / reg.paper_flops_m - 1)
run.table(reg, "registry_vs_paper")

# %% [markdown]
# ## Evaluation of checkpoints

# %%
from rubik.paper import evaluate_checkpoint

# ImageNet-1k val when imagenet_dir is set, else this run's data (smoke: a plumbing check)
root, ds = (imagenet_dir, "imagenet") if imagenet_dir else (data_dir, dataset)
evals = []
for name, path in (checkpoints or {}).items():
    print(f"evaluating {name} ({path}) on {root} ({ds}) ...")
    evals.append(evaluate_checkpoint(name, path, data_dir=root, dataset=ds, val_per_class=eval_per_class,
                                     device=device))
evals = pd.DataFrame(evals)
if len(evals):
    evals["dataset"] = ds
    run.table(evals, "imagenet_eval")
else:
    print("no checkpoints given: pass -p 'checkpoints={tinynet_a: /path/to/tinynet_a.pth}'")

# %% [markdown]
# ## Released weights: the authors' TinyNet-A..E and GhostNet 1.0x
# `load_pretrained` takes the authors' release files from `weights_dir` (a folder holding
# `tinynet_a.pth` ...: the way to bring them to an offline machine), else `$RUBIK_WEIGHTS_DIR`, else
# torch.hub's cache, else downloads them once (`rubik reproduce` fetches them before notebook 01 runs,
# so an offline run stops at once and says this). `rubik.validate` evaluates them with the models'
# own eval transform (resize floor(size / 0.875) bicubic, centre crop). With `imagenet_dir` set (and
# `released_weights` true) this runs on its `val/` split; otherwise the table holds the paper's top-1
# and the command that checks it.

# %%
from rubik.models import create_model, get_model_spec
from rubik.models.pretrained import RELEASES, load_pretrained
from rubik.train import resolve_device
from rubik.validate import validate

released = []
for name in RELEASES:
    spec = get_model_spec(name)
    row = {"model": name, "resolution": spec.resolution, "paper_top1": (spec.paper or {}).get("top1"),
           "command": f"rubik validate --model {name} --pretrained --data {imagenet_dir or '/path/to/imagenet'}"}
    if imagenet_dir and released_weights:
        model = load_pretrained(create_model(name, 1000), name=name, weights_dir=weights_dir)
        m = validate(model, imagenet_dir, per_class=eval_per_class, device=resolve_device(device))
        row.update(top1=m["top1"], top5=m["top5"], images=m["images"])
    released.append(row)
released = pd.DataFrame(released)
run.table(released, "released_weights")
if not (imagenet_dir and released_weights):
    print("no imagenet_dir (or released_weights false): the paper's top-1 only; check them with the commands "
          "above on a machine with ImageNet")

# %% [markdown]
# ## Appendix comparison (Table 1): GhostNet-A..D and TinyNet-A..E vs baselines
# Paper numbers, with our measured ImageNet top-1 where a result exists (this run's evaluations or
# CSVs under `data/results/` with `dataset == imagenet`).

# %%
from rubik.paper import measured_results, paper_comparison, paper_table

imnet = measured_results(results_dir, dataset="imagenet")
if len(evals) and ds == "imagenet":
    imnet = pd.concat([imnet, evals.assign(file="this run")], ignore_index=True)
t1 = paper_table("ghostnet_table1")
main = paper_comparison()
table = pd.concat([main[main.family.str.startswith(("TinyNet", "EfficientNet"))], t1], ignore_index=True)
table = table.drop_duplicates(subset=["model"]).sort_values("flops_m", ascending=False)
if len(imnet) and "name" in imnet:
    ours = imnet.groupby("name")["top1"].max()
    table["our_top1"] = table.model.map(ours)
run.table(table, "appendix_comparison")
