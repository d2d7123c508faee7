"""rubik: a reference reproduction of *Model Rubik's Cube* (Han et al., NeurIPS 2020).

The public API is re-exported here lazily, so ``import rubik`` stays cheap
(the CLI and notebooks import only what they use).
"""
from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # the cube
    "Twist": "rubik.cube",
    "giant_twist": "rubik.cube",
    # models
    "create_model": "rubik.models",
    "list_models": "rubik.models",
    "Arch": "rubik.models",
    "get_model_spec": "rubik.models",
    "input_resolution": "rubik.models",
    "load_timm_checkpoint": "rubik.models",
    # released weights, evaluation, latency
    "load_pretrained": "rubik.models.pretrained",
    "validate": "rubik.validate",
    "measure_latency": "rubik.latency",
    # FLOPs / params
    "count_flops": "rubik.flops",
    "count_params": "rubik.flops",
    "analytic_flops": "rubik.flops",
    "analytic_params": "rubik.flops",
    "flops_ratio": "rubik.flops",
    "solve_width": "rubik.flops",
    # data / training
    "DataConfig": "rubik.data",
    "Recipe": "rubik.recipes",
    "TrainConfig": "rubik.config",
    "train": "rubik.train",
    # study
    "sample_twists": "rubik.sweep",
    "run_sweep": "rubik.launcher",
    "load_results": "rubik.sweep",
    "pareto_frontier": "rubik.frontier",
    "TinyFormula": "rubik.formula",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rubik' has no attribute {name!r}")
