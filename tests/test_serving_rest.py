"""Every signature of the export is callable over TF Serving's REST API.

No server runs here: `rest_to_tensors` maps a REST `predict` request body to the signature's
input tensors as TF Serving does (tensorflow_serving/util/json_tensor.cc): the row format
(`"instances"`: a list with one entry per example, each an object naming every input, or the
bare value when the signature has one input; the entries are stacked into a batch) and the
columnar format (`"inputs"`: an object naming every input, or the bare value of the only one);
`{"b64": ...}` for string inputs; the dtypes from the signature. A signature without inputs
cannot be called at all (the server refuses a request without "instances" or "inputs" values).
The response side follows the same rules: the row format needs every output batched alike.
"""

import base64
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import stargan_tf
from stargan_tf.data import augment, pipeline
from stargan_tf.inference import serving
from support import TINY


class RestError(ValueError):
    """What TF Serving answers with HTTP 400."""


def _decode_b64(value):
    """JSON values of a DT_STRING input: {"b64": ...} objects decode to bytes, nested in lists."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise RestError(f'an object value must be {{"b64": ...}}, got {sorted(value)}')
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    if isinstance(value, str):
        return value.encode()
    raise RestError(f"a string input got {value!r}")


def _tensor(value, spec):
    if spec.dtype == tf.string:
        return tf.constant(_decode_b64(value), tf.string)
    if any(isinstance(v, dict) for v in np.ravel(np.array(value, dtype=object))):
        raise RestError(f"{spec.name}: b64 objects are for string inputs only")
    return tf.constant(np.array(value, dtype=spec.dtype.as_numpy_dtype))


def _columns_of_rows(rows, names):
    """The row format ("instances") as {input name: [value per row]}."""
    if not isinstance(rows, list) or not rows:
        raise RestError('"instances" must be a non-empty list')
    columns = {name: [] for name in names}
    for row in rows:
        if not (isinstance(row, dict) and set(row) != {"b64"}):  # a bare value
            if len(names) != 1:
                raise RestError(f"each instance must name the inputs {names}")
            row = {names[0]: row}
        if set(row) != set(names):
            raise RestError(f"instance inputs {sorted(row)} are not {names}")
        for name in names:
            columns[name].append(row[name])
    return columns


def rest_to_tensors(body, signature):
    """The keyword tensors TF Serving feeds `signature` for the REST predict request `body`."""
    request = json.loads(body)
    specs = signature.structured_input_signature[1]  # {name: TensorSpec}
    if not specs:
        raise RestError("the signature has no inputs: a predict request cannot name any")
    has_rows, has_columns = "instances" in request, "inputs" in request
    if has_rows == has_columns:
        raise RestError('give exactly one of "instances" and "inputs"')
    names = sorted(specs)
    if has_rows:
        columns = _columns_of_rows(request["instances"], names)
        return {name: _tensor(columns[name], specs[name]) for name in names}
    inputs = request["inputs"]
    if not (isinstance(inputs, dict) and set(inputs) != {"b64"}):
        if len(names) != 1:
            raise RestError(f'"inputs" must name the inputs {names}')
        inputs = {names[0]: inputs}
    if set(inputs) != set(names):
        raise RestError(f"inputs {sorted(inputs)} are not {names}")
    return {name: _tensor(inputs[name], specs[name]) for name in names}


def tensors_to_rest(outputs, row_format):
    """The response body TF Serving writes: {"predictions": rows} or {"outputs": columns}."""

    def jsonable(t, name):
        a = t.numpy()
        if a.dtype != object:
            return a.tolist()
        # String outputs: binary ones (by TF Serving's rule, names ending in _bytes) as b64.
        to_json = (
            (lambda b: {"b64": base64.b64encode(b).decode()})
            if name.endswith("_bytes")
            else (lambda b: b.decode())
        )
        return [to_json(b) for b in a] if a.ndim else to_json(a.item())

    if not row_format:
        return {"outputs": {k: jsonable(v, k) for k, v in outputs.items()}}
    sizes = {k: (v.shape[0] if v.shape.rank else None) for k, v in outputs.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise RestError(f"row format needs every output batched alike, got {sizes}")
    n = next(iter(sizes.values()))
    columns = {k: jsonable(v, k) for k, v in outputs.items()}
    return {"predictions": [{k: columns[k][i] for k in columns} for i in range(n)]}


def png_b64(rng):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, [20, 28, 3], np.uint8)).save(buf, "PNG")
    return {"b64": base64.b64encode(buf.getvalue()).decode()}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    networks = stargan_tf.build_networks(TINY, discriminator=False)
    path = tmp_path_factory.mktemp("export") / "1"
    serving.write_saved_model(networks, str(path))
    return tf.saved_model.load(str(path))


def example_inputs(rng):
    """One REST JSON value per input name of any signature, for one example."""
    image = rng.uniform(-1, 1, [32, 32, 3]).round(3).tolist()
    return {
        "images": image,
        "reference_images": image,
        "target_domain": 1,
        "seed": 7,
        "style": rng.standard_normal(8).round(3).tolist(),
        "image_bytes": png_b64(rng),
        "reference_bytes": png_b64(rng),
        "domain_names": "dog",
        "dummy": 0,
        "psi": 0.7,
    }


def test_every_signature_is_callable_over_rest(loaded):
    rng = np.random.default_rng(0)
    names = sorted(loaded.signatures)
    assert len(names) == 16 and "model_info" in names and "translate_latent_psi" in names
    for name in names:
        sig = loaded.signatures[name]
        inputs = sorted(sig.structured_input_signature[1])
        assert inputs, f"{name} has no inputs: no REST client can call it"
        rows = [{k: example_inputs(rng)[k] for k in inputs} for _ in range(2)]
        columnar = {k: [row[k] for row in rows] for k in inputs}
        for body, row_format in (
            (json.dumps({"signature_name": name, "instances": rows}), True),
            (json.dumps({"signature_name": name, "inputs": columnar}), False),
        ):
            outputs = sig(**rest_to_tensors(body, sig))
            if name == "model_info" and row_format:
                # Its outputs have no batch dimension: the row format cannot carry them.
                with pytest.raises(RestError, match="batched alike"):
                    tensors_to_rest(outputs, row_format)
                continue
            response = json.loads(json.dumps(tensors_to_rest(outputs, row_format)))
            if row_format:
                assert len(response["predictions"]) == 2, name
            else:
                assert set(response["outputs"]) == set(outputs), name


def test_rest_requests_give_what_the_signatures_compute(loaded):
    rng = np.random.default_rng(1)
    info = loaded.signatures["model_info"]
    body = json.dumps({"signature_name": "model_info", "inputs": {"dummy": [0]}})
    out = tensors_to_rest(info(**rest_to_tensors(body, info)), row_format=False)["outputs"]
    assert out == {"domain_names": ["cat", "dog"], "img_size": 32, "style_dim": 8, "latent_dim": 4}

    # One input: the bare value in both formats.
    ids = loaded.signatures["domain_ids"]
    for body in ('{"instances": ["dog", "cat"]}', '{"inputs": ["dog", "cat"]}'):
        assert ids(**rest_to_tensors(body, ids))["target_domain"].numpy().tolist() == [1, 0]

    # Bytes in: the same translation as the float signature of the decoded image.
    image = png_b64(rng)
    sig = loaded.signatures["translate_latent_bytes"]
    body = json.dumps({"instances": [{"image_bytes": image, "target_domain": 1, "seed": 3}]})
    (row,) = tensors_to_rest(sig(**rest_to_tensors(body, sig)), row_format=True)["predictions"]
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(row["x_fake_bytes"]["b64"]))))
    assert out.shape == (32, 32, 3)
    floats = loaded.signatures["translate_latent"]
    # The float input the bytes signature decodes to (the same decode, resize and scaling).
    x_real = augment.normalize(augment.resize(pipeline.decode(base64.b64decode(image["b64"])), 32))
    want = floats(
        images=x_real[None],
        target_domain=tf.constant([1], tf.int64),
        seed=tf.constant([3], tf.int64),
    )["x_fake"].numpy()[0]
    want = np.clip(np.round((want + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, want)


def test_malformed_requests_are_refused_as_the_server_does(loaded):
    sig = loaded.signatures["translate_style"]
    with pytest.raises(RestError, match="exactly one"):
        rest_to_tensors('{"instances": [], "inputs": {}}', sig)
    with pytest.raises(RestError, match="are not"):
        rest_to_tensors('{"inputs": {"images": [[[[0, 0, 0]]]]}}', sig)
    with pytest.raises(RestError, match="string inputs only"):
        rest_to_tensors('{"inputs": {"images": {"b64": "AA=="}, "style": [[0]]}}', sig)
    # What the old, input-less model_info was: no request can call such a signature.
    no_inputs = tf.function(lambda: {"x": tf.constant(1)}, input_signature=[])
    no_inputs = no_inputs.get_concrete_function()
    with pytest.raises(RestError, match="no inputs"):
        rest_to_tensors('{"inputs": {}}', no_inputs)
