"""A web demo of a model: `python -m stargan_tf.app --checkpoint DIR` (or `stargan-tf-app`).

Serves a page (Gradio; `pip install 'stargan_tf[app]'`) on http://127.0.0.1:7860: upload a source
image or pick an example (from --examples, else the model directory's `examples/` folder),
choose the target domain, then a style: a latent code (a seed box, a "New style" button, a ψ
slider pulling the style toward the domain's mean) or a reference image. The page shows the
result and a row of styles (seeds seed, seed + 1, ...). --checkpoint is a model directory (its
EMA networks; face models compute their masks with the FAN stored in it) or a SavedModel of
stargan-tf-export. The server binds to --host (127.0.0.1: this machine only); --host 0.0.0.0
lets other machines open it, and anyone who can reach the port can use the model.
The page's logic lives in `stargan_tf/inference/app_logic.py`; this file only lays it out.
"""

import logging
import os
import socket

from absl import flags

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "checkpoint",
    None,
    "Model directory (a training workdir or a converted "
    "official checkpoint) or a SavedModel of stargan-tf-export.",
)
flags.DEFINE_integer("step", None, "Checkpoint step to load (default: the latest).")
flags.DEFINE_string(
    "examples",
    None,
    "Folder of example source images shown under the upload "
    "(default: the model directory's examples/ folder, when it has one).",
)
flags.DEFINE_string(
    "host",
    "127.0.0.1",
    "Address to bind: 127.0.0.1 = this machine only; "
    "0.0.0.0 = every network interface (anyone who reaches the port can use it).",
)
flags.DEFINE_integer("port", 7860, "Port to serve the page on.")
flags.DEFINE_integer(
    "num_styles", 4, "Styles in the row of styles, at first (the page has a slider)."
)

LATENT, REFERENCE = "Latent code", "Reference image"
MAX_UPLOAD = "200mb"  # Gradio refuses larger files before they reach the app.


def page_css(img_size):
    """Images are shown at the column's width whatever their size (their files keep it); a small
    model's pixels as squares rather than blurred."""
    css = "#source img, #result img { width: 100%; height: 100%; object-fit: contain; }"
    if img_size < 128:
        css += " #result img, #styles img { image-rendering: pixelated; }"
    return css


def _import_gradio():
    # No telemetry requests from a demo server (and none possible on offline machines).
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio's HTTP client logs every request it makes to its own server at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        import gradio
    except ImportError:
        raise UserError("The web demo needs Gradio: pip install 'stargan_tf[app]'.") from None
    return gradio


def _check_flags():
    if not FLAGS.checkpoint:
        raise UserError("--checkpoint is required (see --help).")
    if not 0 < FLAGS.port < 65536:
        raise UserError(f"--port={FLAGS.port} must be from 1 to 65535.")
    from stargan_tf.inference import app_logic

    app_logic.find_model(FLAGS.checkpoint)
    app_logic.check_num_styles(FLAGS.num_styles)
    examples = app_logic.find_examples(FLAGS.checkpoint, FLAGS.examples)
    with socket.socket() as s:  # Fail in one line now rather than with Gradio's traceback later.
        # As the server binds: a port that a stopped server left in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((FLAGS.host, FLAGS.port))
        except OSError as e:
            raise UserError(
                f"Cannot serve on {FLAGS.host}:{FLAGS.port} ({e.strerror}): choose "
                "another --port (or --host)."
            ) from None
    return examples


def build_page(gr, logic, examples, num_styles, title):
    """The Gradio Blocks of the page: the components and their events, calling `logic`
    (an `app_logic.DemoLogic`)."""
    # Uploads and results are files in Gradio's cache: those older than an hour go, hourly.
    with gr.Blocks(
        title=f"StarGAN v2 · {title}", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as page:
        gr.Markdown(
            f"## StarGAN v2 · `{title}`\nUpload an image, choose the target domain and a style "
            f"(a latent code or a reference image), press **Translate**. The model works at "
            f"{logic.img_size}×{logic.img_size} pixels; domains: {', '.join(logic.domain_names)}."
        )
        with gr.Row():
            with gr.Column():
                c = _input_components(gr, logic, examples, num_styles)
            with gr.Column():
                c.update(_output_components(gr))
        _wire_events(gr, logic, c)
    return page


def _path_of(upload):
    """The uploaded file of an image field. The events skip Gradio's preprocessing
    (preprocess=False), which would open the file with PIL and fail, with no useful message, on
    a file that is no image: app_logic's checks read it and say what is wrong."""
    return upload.get("path") if isinstance(upload, dict) else upload


def _input_components(gr, logic, examples, num_styles):
    """The left column: source, examples, domain, style mode, seed, ψ, reference, the button."""
    c = {
        "source": gr.Image(
            label="Source image",
            type="filepath",
            image_mode=None,
            sources=["upload", "clipboard"],
            elem_id="source",
            height=280,
        )
    }
    if examples:
        gr.Examples(
            examples=[[p] for p in examples],
            inputs=[c["source"]],
            label="Examples",
            examples_per_page=12,
        )
    with gr.Row():
        c["domain"] = gr.Dropdown(
            list(logic.domain_names),
            value=logic.domain_names[0],
            label="Target domain",
            elem_id="domain",
        )
        c["mode"] = gr.Radio([LATENT, REFERENCE], value=LATENT, label="Style from", elem_id="mode")
    with gr.Group(visible=True) as c["latent_box"]:
        c.update(_latent_components(gr, logic, num_styles))
    with gr.Group(visible=False) as c["reference_box"]:
        c["reference"] = gr.Image(
            label="Reference image (of the target domain)",
            type="filepath",
            image_mode=None,
            sources=["upload", "clipboard"],
            elem_id="reference",
            height=240,
        )
    c["run"] = gr.Button("Translate", variant="primary", elem_id="translate")
    return c


def _latent_components(gr, logic, num_styles):
    """The latent-guided style's controls: seed, "New style", ψ, the number of styles."""
    from stargan_tf.inference.app_logic import MAX_STYLES

    supports_psi = logic.translator.supports_psi
    c = {}
    with gr.Row(equal_height=True):
        c["seed"] = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
        c["new_style"] = gr.Button("New style", elem_id="new-style")
    with gr.Row():
        c["psi"] = gr.Slider(
            0.0,
            1.0,
            value=1.0,
            step=0.05,
            interactive=supports_psi,
            elem_id="psi",
            label="ψ",
            info="0: the domain's mean style; 1: the style as drawn"
            + ("" if supports_psi else " (this model: 1 only)"),
        )
        c["styles_n"] = gr.Slider(
            1,
            MAX_STYLES,
            value=num_styles,
            step=1,
            label="Styles in the row",
            info="seed, seed + 1, ...",
            elem_id="num-styles",
        )
    return c


def _output_components(gr):
    """The right column: the status line, the result and the row of styles."""
    return {
        "status": gr.Textbox(label="Status", interactive=False, lines=2, elem_id="status"),
        "result": gr.Image(
            label="Result",
            type="numpy",
            format="png",
            interactive=False,
            elem_id="result",
            height=360,
        ),
        "styles": gr.Gallery(
            label="Row of styles (seed, seed + 1, ...)",
            format="png",
            columns=4,
            height="auto",
            elem_id="styles",
            object_fit="contain",
        ),
    }


def _wire_events(gr, logic, c):
    """The page's events: uploads checked as they arrive, translations on request."""
    from stargan_tf.inference.app_logic import new_seed, safely

    def shown(result):
        """Result -> the status box's text (and a pop-up when the request failed)."""
        if not result.ok:
            gr.Warning(result.status)
        return result.status

    def check_upload(upload, what):
        path = _path_of(upload)
        if not path:
            return gr.update(), ""
        result = safely(logic.check_upload, path, what)
        # A file that cannot be read is removed from the page, its message left in its place.
        return (gr.update() if result.ok else None), shown(result)

    def translate(mode, source, reference, domain, seed, psi, n):
        source, reference = _path_of(source), _path_of(reference)
        if mode == REFERENCE:
            result = safely(logic.reference, source, reference, domain)
        else:
            result = safely(logic.latent, source, domain, seed, psi, n)
        if not result.ok:  # Keep what the page shows.
            return gr.update(), gr.update(), shown(result)
        return result.image, result.styles, shown(result)

    c["mode"].change(
        lambda m: (gr.update(visible=m == LATENT), gr.update(visible=m == REFERENCE)),
        inputs=c["mode"],
        outputs=[c["latent_box"], c["reference_box"]],
    )
    c["source"].upload(
        lambda p: check_upload(p, "source image"),
        inputs=c["source"],
        outputs=[c["source"], c["status"]],
        preprocess=False,
    )
    c["reference"].upload(
        lambda p: check_upload(p, "reference image"),
        inputs=c["reference"],
        outputs=[c["reference"], c["status"]],
        preprocess=False,
    )
    inputs = [c[k] for k in ("mode", "source", "reference", "domain", "seed", "psi", "styles_n")]
    outputs = [c["result"], c["styles"], c["status"]]
    c["run"].click(translate, inputs=inputs, outputs=outputs, preprocess=False)
    c["seed"].submit(translate, inputs=inputs, outputs=outputs, preprocess=False)
    c["new_style"].click(lambda: (new_seed(), LATENT), outputs=[c["seed"], c["mode"]]).then(
        translate, inputs=inputs, outputs=outputs, preprocess=False
    )


def main(argv):
    del argv  # Unused.
    examples = _check_flags()
    gr = _import_gradio()
    from stargan_tf.inference import app_logic

    logic = app_logic.DemoLogic(app_logic.load_translator(FLAGS.checkpoint, FLAGS.step))
    title = os.path.basename(os.path.normpath(FLAGS.checkpoint))
    page = build_page(gr, logic, examples, FLAGS.num_styles, title)
    theme = gr.themes.Default(  # System fonts: the page loads nothing from the internet.
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    page.queue(default_concurrency_limit=1)  # One translation at a time: the model is shared.
    page.launch(
        server_name=FLAGS.host,
        server_port=FLAGS.port,
        share=False,
        inbrowser=False,
        quiet=True,
        show_error=False,
        max_file_size=MAX_UPLOAD,
        ssr_mode=False,
        footer_links=[],
        theme=theme,
        css=page_css(logic.img_size),
        prevent_thread_lock=True,
    )
    url = f"http://{FLAGS.host}:{FLAGS.port}"
    reach = (
        "this machine only; --host 0.0.0.0 serves every network interface"
        if FLAGS.host in ("127.0.0.1", "localhost", "::1")
        else "other machines can open it: anyone who reaches this port can use the model"
    )
    print(
        f"Serving the web demo of {FLAGS.checkpoint} at {url} (bound to {FLAGS.host}: {reach}). "
        "Ctrl+C stops it.",
        flush=True,
    )
    try:
        page.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        page.close()


def run():
    """Entry point of `stargan-tf-app` and `python -m stargan_tf.app`."""
    cli.run(main)


if __name__ == "__main__":
    run()
