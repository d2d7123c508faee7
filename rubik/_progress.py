"""The progress bar every module uses: tqdm's notebook widget where Jupyter can draw it (ipywidgets
installed), else the plain text bar. ``tqdm.auto`` alone picks the widget in any Jupyter kernel and,
without ipywidgets, shows a "TqdmWarning: IProgress not found" box in every notebook that trains."""
from importlib.util import find_spec

if find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm import tqdm

__all__ = ["tqdm"]
