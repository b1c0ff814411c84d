"""How well saliency maps predict where OSIE's viewers looked (NSS, AUC): the FastGaze teacher,
with and without the centre prior, the centre prior alone, and asm's θ_avg."""

from __future__ import annotations

import numpy as np

from asm.evaluation.report import Table, _bar, _f, _load

__all__ = ["teacher_section"]


def teacher_section(cropper, osie, teacher, limit: int | None = None, progress: bool = False) -> tuple[Table, dict[str, dict]]:
    """How well maps predict where OSIE's viewers looked: NSS and AUC (every pixel a
    negative) of FastGaze, FastGaze x centre Gaussian, the centre Gaussian alone and asm's θ_avg."""
    import cv2

    from asm.models.fastgaze import centre_gaussian, density_on_image, with_centre_prior
    from asm.evaluation.metrics import auc_all_pixels, nss

    items = list(range(len(osie)))[:limit] if limit else list(range(len(osie)))
    scores: dict[str, dict[str, list[float]]] = {}
    for i in _bar(items, "saliency", progress):
        item = osie[i]
        rgb = _load(item.path)
        H, W = rgb.shape[:2]
        fg = cv2.resize(density_on_image(teacher.density(rgb), H, W), (W, H), interpolation=cv2.INTER_LINEAR)
        centre = centre_gaussian(H, W, 1 / 4)
        maps = {"FastGaze": fg, "FastGaze x centre Gaussian": with_centre_prior(fg), "centre Gaussian (W/4, H/4)": centre,
                "asm θ_avg": cropper.heatmaps(rgb, at_image_size=True).avg}
        for name, m in maps.items():
            s = scores.setdefault(name, {"NSS": [], "AUC": []})
            s["NSS"].append(nss(m, item.points))
            s["AUC"].append(auc_all_pixels(m, item.points))
    table = Table(f"Saliency maps against OSIE {osie.split} fixations ({len(items)} photos)", ["map", "NSS", "AUC"])
    out = {}
    for name, s in scores.items():
        out[name] = {k: float(np.nanmean(v)) for k, v in s.items()}
        table.add(name, _f(out[name]["NSS"], 2), _f(out[name]["AUC"]))
    table.notes.append("NSS: mean of the standardised map at the fixated pixels. AUC: the chance that a fixated pixel "
                       "scores above a random pixel of the image (every pixel a negative). The teacher's MANIFEST reports "
                       "FastGaze 2.45 / 0.875 and FastGaze x centre 2.54 / 0.885 on these photos.")
    return table, out
