"""Catalogue-scale cropping: ``asm batch`` (see :func:`run_batch`).

* :mod:`asm.batch.inputs`: files, folders, globs and manifests -> the list of images;
* :mod:`asm.batch.results`: the resumable results (JSONL lines or Parquet parts);
* :mod:`asm.batch.local`: worker processes on this machine;
* :mod:`asm.batch.ray_engine`: the same job on Ray Data (optional: ``asm-crop[ray]``);
* :mod:`asm.batch.job`: the job itself, its progress and its summary.
"""

from asm.batch.inputs import expand_inputs
from asm.batch.job import ENGINES, Progress, Summary, run_batch
from asm.batch.results import FORMATS, open_results

__all__ = ["run_batch", "Summary", "Progress", "expand_inputs", "open_results", "ENGINES", "FORMATS"]
