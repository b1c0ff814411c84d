"""The crop search (paper §3.3), which :meth:`Analysis.crops <asm.analysis.Analysis.crops>` runs.

* :mod:`asm.search.search` -- the two-stage search over one image's score map;
* :mod:`asm.search.scorer` -- the model's score of boxes on that map (plus the centre prior);
* :mod:`asm.search.candidates` -- aspect ratios, the coarse grid and its refinement, NMS;
* :mod:`asm.search.constraints` -- faces, keep-regions, a focus point and zoom as box geometry;
* :mod:`asm.search.faces` -- YuNet face detection (the model ships in ``asm/weights/``).

The last three are pure functions on ``[N, 4]`` float64 boxes ``(x1, y1, x2, y2)`` in image
pixels. Import names from their modules (this package loads nothing by itself).
"""
