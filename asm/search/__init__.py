"""The crop search's geometry, beneath :meth:`asm.cropper.Cropper.search` (paper §3.3).

* :mod:`asm.search.candidates` -- aspect ratios, the coarse grid and its refinement, NMS;
* :mod:`asm.search.constraints` -- faces, keep-regions, a focus point and zoom as box geometry;
* :mod:`asm.search.faces` -- YuNet face detection (the model ships in ``asm/weights/``).

Pure functions on ``[N, 4]`` float64 boxes ``(x1, y1, x2, y2)`` in image pixels; import
them from their modules (this package loads nothing by itself).
"""
