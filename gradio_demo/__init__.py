"""The asm web demo (Gradio): ``python -m gradio_demo.app`` or ``make demo``.

A thin shell over :mod:`asm`: the crops come from :class:`asm.cropper.Cropper` (in-process)
or from a running TorchServe (``--backend URL``); everything drawn comes from :mod:`asm.viz`.
"""

__all__ = ["build_demo", "main"]


def __getattr__(name: str):  # keep ``import gradio_demo`` cheap: gradio loads on first use
    if name in __all__:
        from gradio_demo import app

        return getattr(app, name)
    raise AttributeError(f"module 'gradio_demo' has no attribute {name!r}")
