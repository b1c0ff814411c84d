"""``asm eval``: asm next to the centre crop and heuristic peers, on the same images in one run.

* :mod:`asm.evaluation.run` -- the command: which sections run, on which data;
* :mod:`asm.evaluation.cropping` -- the GAICD, FCDB and FLMS protocols;
* :mod:`asm.evaluation.border` -- border-free checks (a) photo vs re-framed cut, (b) border bias;
* :mod:`asm.evaluation.retention` -- check (c): where people look, kept by the top crop;
* :mod:`asm.evaluation.placement` -- where top crops sit along their free axis;
* :mod:`asm.evaluation.teacher` -- saliency maps against OSIE fixations (NSS, AUC);
* :mod:`asm.evaluation.sheets` -- the comparison sheet;
* :mod:`asm.evaluation.report` -- tables, timings and what the sections share;
* :mod:`asm.evaluation.peers` -- the centre crop and the heuristic peers;
* :mod:`asm.evaluation.metrics` -- the measures (pure functions); those training shares live
  in :mod:`asm.geometry`.
"""
