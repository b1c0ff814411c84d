"""Training ASM-Net on where people look (``asm train``, ``python -m asm.training``), recipe v2.

No annotated cropping images exist offline, so ranking pairs come from where people look
(:mod:`asm.data.gaze`): human eye fixations on OSIE photos, and the FastGaze teacher's
density times the centre prior on ~1 100 more photos. For each training photo we draw
groups of views of one size and aspect; within a group the view that keeps more of the
target density ranks higher (eqs. 3-4, margin on the kept share ``delta``). Most groups
are what the search serves: the largest box of an aspect, or a box of the scales the
search uses, at places spread over the whole free range (so boxes touching two borders
are seen as often as they are served); the rest float inside the photo at 50-90 % of the
largest box. Each view is also ranked against a wider view around it (scale).

A crop's score is ``composition_pool(M, box) + w * centre_prior(box)``: the map sees
content, and the centre bias of human looks is one explicit, learnt weight ``w``
(:mod:`asm.models.prior`). Losses: the ranking hinge, the saliency-aware loss (eq. 7) with the
teacher's density as ``S``, and optionally a distillation of the teacher's density into
θ_avg (standardised maps, squared error).

Guards against the spatial-bias shortcut (paper §4.5): reflect padding in the backbone,
a random outer crop (85-100 %) and flip of each photo, views compared only with views of
the same size, and the centre prior outside the map.

* :mod:`asm.training.config` -- :class:`~asm.training.config.TrainConfig`, every knob of a run;
* :mod:`asm.training.samples` -- the training and validation samples a config asks for;
* :mod:`asm.training.views` -- views of a photo, their kept shares, and the ranking pairs;
* :mod:`asm.training.losses` -- the loss functions (eqs. 4, 7);
* :mod:`asm.training.objective` -- the loss of one batch;
* :mod:`asm.training.validation` -- the figures of each epoch on held-out photos;
* :mod:`asm.training.loop` -- the loop (one CPU, one GPU, or ``torchrun``), checkpoints;
* :mod:`asm.training.command` -- the ``asm train`` command.
"""
