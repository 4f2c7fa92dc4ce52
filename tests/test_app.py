"""The web demo (stargan-tf-app): its logic called directly (uploads, requests, both kinds of
model), its command's usage errors, and the page served by the command and driven in a real
headless browser (Chromium through Selenium): upload, domain, translate, seed, reference, bad
files, screenshot.

The browser test needs Chromium and its driver (Debian: `apt-get install chromium
chromium-driver`) and Selenium (pip); without them it fails saying so: it is never skipped.
"""

import base64
import io
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import stargan_tf
from cli_helpers import assert_usage_error, run_module, subprocess_env
from support import REPO
from inference_helpers import DOMAINS, make_model_dir, random_image, write_image
from stargan_tf.errors import UserError
from stargan_tf.inference import app_logic, images, serving
from stargan_tf.inference.images import to_uint8

# Timeouts, each many times what it waits for on an idle 2-core machine, so that a machine busy
# with other work still finishes (measured beside four other jobs, load average 13):
STARTUP_TIMEOUT = 600  # the app's start: TensorFlow, the model, Gradio (25-50 s measured)
PAGE_TIMEOUT = 120  # the page loaded and its components drawn (4-9 s measured)
REQUEST_TIMEOUT = 120  # one request's round trip: upload check or translation (1-4 s measured)
STOP_TIMEOUT = 60  # the server's exit after SIGTERM
# The page's images are PNG files of to_uint8(x_fake), read back through a canvas; this process
# computes them from the same weights. Measured on 90 translations of the tiny model in separate
# processes: 1 or 2 threads and op determinism changed no level, oneDNN off vs on changed 5 of
# 92160 values by 1 level (a float at .5 rounding either way).
PIXEL_ATOL = 1
NUM_STYLES = 3
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL_BROWSER = (
    "install Chromium and its driver (Debian/Ubuntu, as root: apt-get install chromium "
    "chromium-driver) and Selenium (pip install selenium; make install does)"
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(model directory of the tiny random model with an examples/ folder, its networks)."""
    path, networks = make_model_dir(tmp_path_factory.mktemp("app") / "tiny")
    rng = np.random.default_rng(1)
    for i in range(2):
        write_image(
            str(path / app_logic.EXAMPLES_SUBDIR / f"example{i}.png"), random_image(rng, 40, 40)
        )
    return path, networks


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Uploads: good images (RGB, grayscale, RGBA, a reference) and bad files."""
    root = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(2)
    rgb = random_image(rng, 45, 60)
    paths = {
        "source": root / "source.png",
        "reference": root / "reference.jpg",
        "gray": root / "gray.png",
        "rgba": root / "rgba.png",
        "text": root / "notes.txt",
        "fake": root / "fake.png",  # text with an image's name
        "tiff": root / "photo.tiff",
        "huge": root / "huge.png",
    }
    write_image(str(paths["source"]), rgb)
    write_image(str(paths["reference"]), random_image(rng, 50, 50))
    Image.fromarray(rgb).convert("L").save(paths["gray"])
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(paths["rgba"])
    paths["text"].write_text("not an image\n")
    paths["fake"].write_text("not an image either\n")
    Image.fromarray(rgb).save(paths["tiff"])
    # 9000 x 8000 = 72 MP, above MAX_PIXELS; 1 bit per pixel keeps the file and the test small.
    Image.new("1", (9000, 8000)).save(paths["huge"])
    return {k: str(v) for k, v in paths.items()}


def expected_latent(networks, path, domain, seed):
    x_real = images.read_image(path, networks.config.img_size)
    return to_uint8(stargan_tf.translate(networks, x_real, domain, seed=seed))


def expected_reference(networks, path, reference, domain):
    size = networks.config.img_size
    return to_uint8(
        stargan_tf.translate(
            networks,
            images.read_image(path, size),
            domain,
            reference=images.read_image(reference, size),
        )
    )


def assert_same_image(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = np.abs(actual.astype(int) - expected.astype(int)).max()
    assert diff <= PIXEL_ATOL, f"max |difference| {diff} levels"


# The logic, called directly.


def test_uploads_are_read_as_translate_reads_them_or_refused_with_a_message(files):
    upload = app_logic.read_upload(files["source"])
    assert upload.image.shape == (45, 60, 3) and upload.image.dtype == np.uint8
    assert upload.note is None
    gray = app_logic.read_upload(files["gray"])
    assert gray.image.shape == (45, 60, 3)
    assert (gray.image[..., 0] == gray.image[..., 2]).all()
    assert "grayscale" in gray.note
    rgba = app_logic.read_upload(files["rgba"], "reference image")
    assert rgba.image.shape == (45, 60, 3) and "reference image has an alpha channel" in rgba.note
    refused = {
        None: "Upload a source image first",
        files["text"]: "notes.txt is not an image: upload a JPEG, PNG",
        files["fake"]: "fake.png is not an image",
        files["tiff"]: "photo.tiff is a TIFF image: upload it as JPEG or PNG",
        files["huge"]: "huge.png is 9000×8000 pixels (72 MP): the limit is 64 MP",
    }
    for path, message in refused.items():
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            app_logic.read_upload(path)


def test_requests_give_what_translate_gives(model, files):
    path, networks = model
    logic = app_logic.DemoLogic(app_logic.load_translator(str(path)))
    assert logic.domain_names == DOMAINS and logic.img_size == 32
    result = logic.latent(files["source"], "dog", 3, 1.0, NUM_STYLES)
    assert result.ok, result.status
    assert "Translated into dog with the style of seed 3" in result.status
    assert_same_image(result.image, expected_latent(networks, files["source"], "dog", 3))
    assert [caption for _, caption in result.styles] == ["seed 3", "seed 4", "seed 5"]
    for k, (image, _) in enumerate(result.styles):
        assert_same_image(image, expected_latent(networks, files["source"], "dog", 3 + k))
    assert np.abs(result.styles[0][0].astype(int) - result.styles[1][0]).max() > 10

    result = logic.reference(files["source"], files["reference"], "wild")
    assert result.ok, result.status
    assert_same_image(
        result.image, expected_reference(networks, files["source"], files["reference"], "wild")
    )

    result = logic.latent(files["gray"], "cat", 0)  # grayscale: translated, with a note
    assert result.ok and "grayscale" in result.status, result.status


def test_psi_reaches_the_model(model, files):
    """ψ = 0 gives every seed the domain's mean style."""
    path, _ = model
    logic = app_logic.DemoLogic(app_logic.load_translator(str(path)))
    assert logic.translator.supports_psi
    result = logic.latent(files["source"], "dog", 0, 0.0, 2)
    assert result.ok, result.status
    assert_same_image(result.styles[0][0], result.styles[1][0])


def test_bad_requests_get_messages_not_tracebacks(model, files):
    path, _ = model
    logic = app_logic.DemoLogic(app_logic.load_translator(str(path)))
    source = files["source"]
    cases = [
        ((logic.latent, None, "dog", 0), "Upload a source image first"),
        ((logic.latent, source, "bogus", 0), "Choose a target domain: one of cat, dog, wild"),
        ((logic.latent, source, "dog", None), "Enter a seed"),
        ((logic.latent, source, "dog", 1.5), "must be a whole number"),
        ((logic.latent, source, "dog", -1), "must be a whole number from 0"),
        ((logic.latent, source, "dog", 2**63), "must be a whole number from 0 to 2^63 - 1"),
        ((logic.latent, source, "dog", float("nan")), "must be a whole number"),
        ((logic.latent, source, "dog", "seven"), "'seven' is not a whole number"),
        ((logic.latent, source, "dog", 0, 1.5), "ψ=1.5 is outside [0, 1]"),
        ((logic.latent, source, "dog", 0, 1.0, 0), "The number of styles must be from 1 to 8"),
        ((logic.reference, source, None, "dog"), "Upload a reference image first"),
        ((logic.reference, source, files["text"], "dog"), "notes.txt is not an image"),
        ((logic.check_upload, files["huge"]), "the limit is 64 MP"),
    ]
    for (fn, *args), message in cases:
        result = app_logic.safely(fn, *args)
        assert not result.ok and message in result.status, (message, result.status)
        assert result.image is None
    # Any other failure: one line naming it (its traceback goes to the server's log only).
    result = app_logic.safely(lambda: {}["missing"])
    assert not result.ok and result.status == "Translation failed: 'missing'", result.status


def test_a_saved_model_serves_the_page_as_its_model_directory_does(model, files, tmp_path):
    path, _ = model
    from_dir = app_logic.DemoLogic(app_logic.load_translator(str(path)))
    networks = stargan_tf.load_networks(str(path))
    serving.write_saved_model(networks, str(tmp_path / "export" / "1"))
    for where in ("export", "export/1"):  # the export base (its highest version) or a version
        kind, _ = app_logic.find_model(str(tmp_path / where))
        assert kind == app_logic.SAVED_MODEL
    logic = app_logic.DemoLogic(app_logic.load_translator(str(tmp_path / "export")))
    assert logic.domain_names == DOMAINS and logic.img_size == 32
    for request in [
        (logic.latent, from_dir.latent, files["source"], "wild", 11, 1.0, 2),
        (logic.reference, from_dir.reference, files["source"], files["reference"], "cat"),
    ]:
        exported, direct = request[0](*request[2:]), request[1](*request[2:])
        assert exported.ok, exported.status
        assert_same_image(exported.image, direct.image)
        for (a, _), (b, _) in zip(exported.styles, direct.styles):
            assert_same_image(a, b)
    # ψ through the export's ψ signature (translate_latent_psi).
    assert logic.translator.supports_psi
    exported = logic.latent(files["source"], "wild", 11, 0.5, 2)
    direct = from_dir.latent(files["source"], "wild", 11, 0.5, 2)
    assert exported.ok, exported.status
    assert_same_image(exported.image, direct.image)


def test_model_and_example_folders(model, tmp_path):
    path, _ = model
    assert app_logic.find_model(str(path)) == (app_logic.MODEL_DIR, str(path))
    with pytest.raises(UserError, match="is not a model: it holds neither config.json"):
        app_logic.find_model(str(tmp_path))
    examples = app_logic.find_examples(str(path))
    assert [os.path.basename(p) for p in examples] == ["example0.png", "example1.png"]
    assert app_logic.find_examples(str(tmp_path)) == []  # no examples/ folder: none
    with pytest.raises(UserError, match="--examples=.* holds no images"):
        app_logic.find_examples(str(path), str(tmp_path))


# The command.


def test_app_usage_errors(model, tmp_path):
    path, _ = model
    (tmp_path / "notes").mkdir()
    assert_usage_error(
        run_module(
            "stargan_tf.app",
            "--checkpoint",
            tmp_path / "notes",
            what="stargan_tf.app on a folder that is no model",
        ),
        "--checkpoint=",
        "is not a model",
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_usage_error(
            run_module(
                "stargan_tf.app",
                "--checkpoint",
                path,
                "--port",
                port,
                what="stargan_tf.app on a busy port",
            ),
            f"Cannot serve on 127.0.0.1:{port}",
            "choose another --port",
        )


# The page, in a real browser.


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    """A headless Chromium driven by Selenium; fails (never skips) when one is missing."""
    missing = []
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if binary is None:
        missing.append("a Chromium browser (" + " / ".join(BROWSERS) + ")")
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        missing.append("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium Python package")
    if missing:
        pytest.fail(f"The browser test needs {', '.join(missing)}: {INSTALL_BROWSER}.")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1250",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


class Server:
    """`python -m stargan_tf.app` in a subprocess, its stdout read by a thread."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stargan_tf.app", *map(str, argv)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        self.lines = queue.Queue()
        self.stderr = []
        threading.Thread(
            target=self._read, args=(self.proc.stdout, self.lines.put), daemon=True
        ).start()
        threading.Thread(
            target=self._read, args=(self.proc.stderr, self.stderr.append), daemon=True
        ).start()

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line)

    def wait_for_line(self, fragment, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"The app exited ({self.proc.returncode}) before saying "
                        f"{fragment!r}:\n{self.tail()}"
                    ) from None
                continue
            if fragment in line:
                return line
        raise AssertionError(
            f"The app's start (a line with {fragment!r}): not seen after "
            f"{timeout} s.\n{self.tail()}"
        )

    def tail(self):
        return "".join(self.stderr)[-3000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"The app did not exit within {STOP_TIMEOUT} s of SIGTERM."
            ) from None


class Page:
    """The demo page in the browser: the few actions and reads the test needs."""

    READ_IMAGE = """
        const img = document.querySelector(arguments[0]);
        if (!img || !img.complete || img.naturalWidth === 0) return null;
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        canvas.getContext('2d').drawImage(img, 0, 0);
        return [img.src, img.naturalWidth, img.naturalHeight, canvas.toDataURL('image/png')];
    """

    def __init__(self, driver, url):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.by, self.wait_cls = driver, By, WebDriverWait
        driver.get(url)
        self.wait(
            lambda d: self.find("#source input[type=file]"),
            PAGE_TIMEOUT,
            "the page's source upload field",
        )

    def wait(self, condition, timeout, what):
        from selenium.common.exceptions import TimeoutException

        try:
            return self.wait_cls(self.driver, timeout, poll_frequency=0.2).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"{what}: not seen after {timeout} s. Status box: {self.status()!r}"
            ) from None

    def find(self, css):
        found = self.driver.find_elements(self.by.CSS_SELECTOR, css)
        return found[0] if found else None

    def status(self):
        box = self.find("#status textarea")
        return box.get_attribute("value") if box else None

    def wait_for_status(self, fragment, timeout=REQUEST_TIMEOUT):
        return self.wait(
            lambda d: fragment in (self.status() or "") and self.status(),
            timeout,
            f"the status {fragment!r}",
        )

    def upload(self, field, path):
        self.find(f"#{field} input[type=file]").send_keys(path)

    def choose_domain(self, name):
        self.find("#domain input").click()
        option = self.wait(
            lambda d: self.find(f'li[role=option][aria-label="{name}"]'),
            PAGE_TIMEOUT,
            f"the domain menu's {name!r}",
        )
        option.click()
        self.wait(
            lambda d: self.find("#domain input").get_attribute("value") == name,
            PAGE_TIMEOUT,
            f"the domain {name!r} chosen",
        )

    def set_seed(self, seed):
        # After a change of the "Style from" choice, the server shows the seed box.
        box = self.wait(lambda d: self.find("#seed input"), REQUEST_TIMEOUT, "the seed box")
        box.clear()
        box.send_keys(str(seed))

    def click(self, elem_id):
        self.find(f"#{elem_id}").click()

    def image(self, css):
        """(src, uint8 [H, W, 3]) of a loaded <img>, at its file's own size; or None."""
        read = self.driver.execute_script(self.READ_IMAGE, css)
        if read is None:
            return None
        src, width, height, data_url = read
        png = base64.b64decode(data_url.split(",", 1)[1])
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert pixels.shape == (height, width, 3)
        return src, pixels

    def wait_for_new_result(self, old_src, status):
        self.wait_for_status(status)
        return self.wait(
            lambda d: (r := self.image("#result img")) and r[0] != old_src and r,
            REQUEST_TIMEOUT,
            "a new result image",
        )

    def text(self):
        return self.find("body").text


def test_the_page_in_a_real_browser(model, files, browser, tmp_path):
    path, networks = model
    port = free_port()
    server = Server(["--checkpoint", path, "--port", port, "--num_styles", NUM_STYLES])
    try:
        line = server.wait_for_line("Serving the web demo", STARTUP_TIMEOUT)
        assert f"http://127.0.0.1:{port}" in line and "bound to 127.0.0.1" in line, line
        page = Page(browser, f"http://127.0.0.1:{port}/")
        check_page(page, path, networks, files, tmp_path)
        assert server.proc.poll() is None, server.tail()  # still serving after the bad files
        # Nothing written into the package (Gradio writes a .pyi beside a module that subclasses
        # one of its components: the app subclasses none).
        assert not list((REPO / "stargan_tf").rglob("*.pyi"))
    finally:
        server.stop()


def check_page(page, path, networks, files, tmp_path):
    size = networks.config.img_size
    text = page.text()
    assert "Examples" in text and f"{size}×{size} pixels" in text
    assert all(name in text for name in DOMAINS)

    # Latent-guided: upload, pick the domain, translate.
    page.upload("source", files["source"])
    page.wait_for_status("The source image: 60×45 pixels")
    page.choose_domain("dog")
    page.set_seed(0)
    page.click("translate")
    src0, first = page.wait_for_new_result(None, "Translated into dog with the style of seed 0")
    assert first.shape == (size, size, 3)  # the model's size
    assert_same_image(first, expected_latent(networks, files["source"], "dog", 0))
    styles = page.wait(
        lambda d: len(d.find_elements(page.by.CSS_SELECTOR, "#styles img")) == NUM_STYLES,
        REQUEST_TIMEOUT,
        f"{NUM_STYLES} images in the row of styles",
    )
    assert styles

    # Another seed, another style.
    page.set_seed(5)
    page.click("translate")
    src5, fifth = page.wait_for_new_result(src0, "with the style of seed 5")
    assert fifth.shape == (size, size, 3)
    assert np.abs(fifth.astype(int) - first).max() > 10
    assert_same_image(fifth, expected_latent(networks, files["source"], "dog", 5))

    # The screenshot of the README (docs/app.png) is this view, of a demo model.
    shot = tmp_path / "app.png"
    assert page.driver.save_screenshot(str(shot))
    assert Image.open(shot).size[0] >= 1000
    if os.environ.get("STARGAN_APP_SCREENSHOT"):
        shutil.copy(shot, os.environ["STARGAN_APP_SCREENSHOT"])

    # "New style": a fresh seed in the box, and its translation.
    page.click("new-style")
    page.wait(
        lambda d: page.find("#seed input").get_attribute("value") not in ("5", ""),
        REQUEST_TIMEOUT,
        "a new seed in the seed box",
    )
    seed = int(page.find("#seed input").get_attribute("value"))
    src_new, new = page.wait_for_new_result(src5, f"with the style of seed {seed} ")
    assert_same_image(new, expected_latent(networks, files["source"], "dog", seed))

    # Reference-guided.
    page.find('#mode input[value="Reference image"]').click()
    page.wait(
        lambda d: page.find("#reference input[type=file]"),
        PAGE_TIMEOUT,
        "the reference upload field",
    )
    page.upload("reference", files["reference"])
    page.wait_for_status("The reference image: 50×50 pixels")
    page.click("translate")
    src_ref, by_reference = page.wait_for_new_result(
        src_new, "with the style of the reference image"
    )
    assert_same_image(
        by_reference, expected_reference(networks, files["source"], files["reference"], "dog")
    )

    # Bad files: messages in the page, and the server goes on serving.
    page.upload("source", files["text"])  # refused by the page's own file-type check
    page.wait(
        lambda d: "Invalid file type: notes.txt" in page.text(),
        REQUEST_TIMEOUT,
        "the page's message about notes.txt",
    )
    page.upload("source", files["fake"])  # an image's name, text inside: refused by the app
    page.wait_for_status("The source image fake.png is not an image")
    page.wait(
        lambda d: "fake.png is not an image" in page.text(),
        REQUEST_TIMEOUT,
        "the pop-up about fake.png",
    )
    page.upload("source", files["huge"])
    page.wait_for_status("huge.png is 9000×8000 pixels (72 MP): the limit is 64 MP")
    page.upload("source", files["gray"])
    page.wait_for_status("The source image is grayscale")
    page.find('#mode input[value="Latent code"]').click()
    page.set_seed(5)
    page.click("translate")
    src_gray, gray = page.wait_for_new_result(
        src_ref, "Translated into dog with the style of seed 5"
    )
    assert_same_image(gray, expected_latent(networks, files["gray"], "dog", 5))

    # An example of the model directory's examples/ folder as the source.
    page.find('img[src$="/example1.png"]').click()
    page.wait(
        lambda d: page.find('#source img[src$="example1.png"]'),
        REQUEST_TIMEOUT,
        "example1.png in the source field",
    )
    page.click("translate")
    _, example = page.wait_for_new_result(src_gray, "with the style of seed 5")
    assert_same_image(
        example,
        expected_latent(networks, str(path / app_logic.EXAMPLES_SUBDIR / "example1.png"), "dog", 5),
    )
    assert "Traceback" not in page.driver.page_source
