"""Data sets: what the model is trained and evaluated on.

* :mod:`asm.data.shared` -- where the shared data folder is (``$ASM_SHARED``);
* :mod:`asm.data.annotations` -- plain readers of the GAICD, FCDB and FLMS annotation files;
* :mod:`asm.data.cropping` -- :class:`~asm.data.cropping.GAICD`, ``FCDB``, ``FLMS`` over them;
* :mod:`asm.data.fixations` -- OSIE eye fixations;
* :mod:`asm.data.photos` -- photo folders with licence classes, split by source;
* :mod:`asm.data.gaze` -- training samples: a photo and where people look at it;
* :mod:`asm.data.pack` -- gaze samples in one file.
"""
