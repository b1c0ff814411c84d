"""asm inside the image proxies people already run.

* :mod:`asm.integrations.thumbor` -- a Thumbor detector: ``DETECTORS = ['asm.integrations.thumbor']``
  makes Thumbor's ``/WxH/smart/`` crops asm's (imports thumbor);
* :mod:`asm.integrations.proxies` -- URL recipes that hand asm's content focal point
  (:mod:`asm.search.focal`) to imgproxy, imagor, imgix, Cloudinary and Cloudflare Images.
"""
