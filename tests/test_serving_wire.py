"""asm.serving.wire, both sides of the contract: what a client encodes the server parses back, and what
the server answers (crops, overlays, refusals) the client decodes back, equal."""

import base64
import json

import numpy as np
import pytest

from asm.options import CropOptions
from asm.serving import wire
from asm.errors import (AsmError, BadRequest, ImageTooLarge, ImageTooSmall, InvalidImage, InvalidModel, InvalidOption,
                        ModelNotFound)
from asm.io import encode_png
from asm.search.focal import content_focal_point

OPTIONS = [
    CropOptions(),
    CropOptions.parse(["16:9", "1:1", "free", "1.91:1", (3, 2)], top_k=3, nms_iou=0.35),
    CropOptions.parse(circular=True, top_k=2, faces=False),
    CropOptions.parse("4:3", keep=[[10.25, 20.5, 300.125, 200.0], [1, 2, 3, 4]], focus=(123.456789, 98.7654321),
                      min_scale=0.7333333333333333),
]


@pytest.fixture(scope="module")
def photo_png():
    rng = np.random.default_rng(0)
    img = (rng.random((300, 400, 3)) * 60).astype(np.uint8)
    img[100:200, 250:350] = (230, 90, 40)
    return encode_png(img)


def _over_the_wire(body):
    return json.loads(json.dumps(body))


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("heatmap", [False, True])
def test_what_the_client_encodes_the_server_parses_back(options, heatmap, photo_png):
    fields = wire.encode_form(options, heatmap)
    assert all(isinstance(v, str) for v in fields.values())
    expected = wire.Request(photo_png, options, heatmap)
    # multipart: every field arrives as bytes, the file as the field "data"
    assert wire.parse_form({"data": bytearray(photo_png), **{k: v.encode() for k, v in fields.items()}}) == expected
    # JSON: the same fields, the file as base64 (plain and as a data URL)
    for image in (base64.b64encode(photo_png).decode(), "data:image/png;base64," + base64.b64encode(photo_png).decode()):
        assert wire.parse_json(_over_the_wire({"image": image, **fields})) == expected


def test_raw_body_and_repeated_fields(photo_png):
    assert wire.parse_body(bytearray(photo_png), "image/png") == wire.Request(photo_png, CropOptions())
    request = wire.parse_form({"image": photo_png, "aspect": [b"16:9", b"1:1"], "keep": [b"1,2,30,40", b"5,6,70,80"]})
    assert request.options == CropOptions.parse(["16:9", "1:1"], keep=[[1, 2, 30, 40], [5, 6, 70, 80]])
    assert wire.parse_json({"image": base64.b64encode(photo_png).decode(), "aspect": ["16:9", "1:1"], "heatmap": True}) == \
        wire.Request(photo_png, CropOptions.parse(["16:9", "1:1"]), True)


@pytest.mark.parametrize("options", OPTIONS[1:])
def test_what_the_server_answers_the_client_reads_back(cropper, photo_png, options):
    analysis = cropper.analyse(photo_png)
    request = wire.Request(photo_png, options, heatmap=True)
    answer = _over_the_wire(wire.answer(analysis, request))
    result, overlays = wire.read_answer(200, answer)
    assert answer["focal_point"] == content_focal_point(analysis, options).to_json()
    assert result.to_json() == analysis.crops(options, focal_point=True).to_json()  # the focal point read back too
    assert analysis.crops(options).to_json() == cropper.crop(photo_png, **_kwargs(options)).to_json()
    expected = analysis.overlays()
    assert list(overlays) == list(expected) == ["theta_avg", "theta_std"]
    for name in expected:  # PNG is lossless: the very pixels the server drew
        np.testing.assert_array_equal(overlays[name], expected[name])
    _, none = wire.read_answer(200, _over_the_wire(wire.answer(analysis, wire.Request(photo_png, options))))
    assert none == {}


def _kwargs(options: CropOptions) -> dict:
    return {"aspect": [a.label for a in options.aspects], "circular": options.circular, "top_k": options.top_k,
            "nms_iou": options.nms_iou, "faces": options.faces, "keep": [list(b) for b in options.keep] or None,
            "focus": options.focus, "min_scale": options.min_scale}


@pytest.mark.parametrize("error", [InvalidImage("not an image"), ImageTooLarge("too big: 60,000,000 pixels"),
                                   ImageTooSmall("8x8 is too small"), InvalidOption("top_k must be between 1 and 20"),
                                   BadRequest("The request has no image"), InvalidModel("not a model"), ModelNotFound("no model")])
def test_a_refusal_comes_back_as_the_same_typed_error(error):
    status, body = wire.error_answer(error)
    assert status == error.http_status and body == {"error": error.code, "message": str(error)}
    with pytest.raises(AsmError) as got:
        wire.read_answer(status, _over_the_wire(body))
    assert type(got.value) is type(error) and str(got.value) == str(error) and got.value.title == error.title


def test_an_internal_error_names_no_detail_and_is_the_servers_fault():
    status, body = wire.error_answer(RuntimeError("/secret/path exploded"), request_id="r-9")
    assert status == 500 and body["error"] == "internal_error"
    assert "secret" not in body["message"] and "RuntimeError" in body["message"] and "r-9" in body["message"]
    with pytest.raises(wire.ServerError, match="HTTP 500.*RuntimeError"):
        wire.read_answer(status, _over_the_wire(body))
    with pytest.raises(wire.ServerError, match="HTTP 502"):
        wire.read_answer(502, None)  # a proxy's empty answer


@pytest.mark.parametrize("body, words", [
    ({"width": 100, "height": 50}, "KeyError"),
    ({"width": 100, "height": 50, "crops": [{"box": [0, 0, 101, 50], "score": 1, "aspect": "2:1", "shape": "rect"}]}, "outside"),
    ({"width": 100, "height": 50, "crops": [{"box": [0, 0, 10, 5], "score": 1, "aspect": "2:1", "shape": "oval"}]}, "not a crop"),
    ({"width": 100, "height": 50, "crops": [], "heatmaps": {"theta_avg": "%%%"}}, "Error"),
    ({"width": 100, "height": 50, "crops": [], "heatmaps": {"theta_avg": base64.b64encode(b"no png").decode()}}, "InvalidImage"),
    ({"width": 100, "height": 50, "crops": [], "heatmaps": {"theta_max": ""}}, "unknown heatmaps"),
    ([1, 2], "TypeError"),
])
def test_an_answer_that_breaks_the_contract_is_never_dropped_silently(body, words):
    with pytest.raises(wire.ServerError, match=words):
        wire.read_answer(200, body)


@pytest.mark.parametrize("parse, words", [
    (lambda png: wire.parse_form({}), "has no image"),
    (lambda png: wire.parse_form({"aspect": b"1:1"}, "application/x-www-form-urlencoded"), "url-encoded"),
    (lambda png: wire.parse_form({"data": png, "image": png}), "not in both"),
    (lambda png: wire.parse_form({"data": [png, png]}), "one image per request"),
    (lambda png: wire.parse_form({"data": b""}), "empty"),
    (lambda png: wire.parse_form({"data": png, "top_k": [b"1", b"2"]}), "given 2 times"),
    (lambda png: wire.parse_form({"data": png, "aspect": b"\xff\xfe"}), "not UTF-8"),
    (lambda png: wire.parse_json([1, 2]), "must be an object"),
    (lambda png: wire.parse_json({"aspect": "1:1"}), 'no "image"'),
    (lambda png: wire.parse_json({"image": "not base64!"}), "not valid base64"),
    (lambda png: wire.parse_json({"image": 42}), "base64 string"),
    (lambda png: wire.parse_body("hello", "text/plain"), "text"),
    (lambda png: wire.parse_body(b"{broken", "application/json"), "not valid JSON"),
    (lambda png: wire.parse_body(b"", "image/jpeg"), "empty"),
])
def test_unreadable_requests_are_bad_requests(parse, words, photo_png):
    with pytest.raises(BadRequest, match=words):
        parse(photo_png)


def test_options_are_checked_and_unknown_ones_refused(photo_png):
    with pytest.raises(InvalidOption, match=r"unknown option\(s\) 'heatmaps'.*min_scale, heatmap"):
        wire.parse_form({"data": photo_png, "heatmaps": b"true"})
    with pytest.raises(InvalidOption, match="heatmap must be true or false"):
        wire.parse_json({"image": base64.b64encode(photo_png).decode(), "heatmap": "maybe"})
    with pytest.raises(InvalidOption, match="top_k"):
        wire.parse_form({"data": photo_png, "top_k": b"99"})
