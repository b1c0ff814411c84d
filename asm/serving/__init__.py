"""What servers and their clients share: :mod:`asm.serving.wire`, the HTTP contract of
``POST /predictions/asm`` (the TorchServe handler, the demo's TorchServe client, the tests'
fake server). The shells themselves live outside the package (``handler/``, ``gradio_demo/``).
"""
