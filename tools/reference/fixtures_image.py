"""Image fixtures: photo-like synthetic images as PNG/JPEG files, the RGB arrays Pillow decodes them to, and
transformers' CLIP / SigLIP pixel_values for them.

Writes <out_dir>/images/:
  *.png, *.jpg                        the test images (fixed seeds)
  clip/preprocessor_config.json       CLIPImageProcessor(size shortest_edge 32, crop 30x30), via save_pretrained
  siglip/preprocessor_config.json     SiglipImageProcessor(size 32x32), via save_pretrained
  processor_goldens.safetensors       decoded/<file>             uint8 [H, W, 3]  Image.open(f).convert("RGB")
                                      decoded_exif/<file>        uint8 [H, W, 3]  ImageOps.exif_transpose first
                                                                 (files with an EXIF orientation only)
                                      clip/<backend>/<file>      float32 [1, 3, 30, 30]
                                      siglip/<backend>/<file>    float32 [1, 3, 32, 32]
                                      backend: "auto" (AutoImageProcessor.from_pretrained(folder) as users get it),
                                      "pil" and "torchvision" (backend= forced, when available)
  processor_goldens.json              versions, the classes AutoImageProcessor returned, file list

Run: python3 tools/reference/fixtures_image.py [fixtures_dir]   (or through make_fixtures.py)
"""

import json
import sys
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageOps


def synthetic_photo(width, height, seed):
    """Smooth gradients, hard-edged shapes and sensor-like noise: exercises both smooth and sharp resampling."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    red = 60 + 150 * u + 20 * np.sin(6.0 * v + seed)
    green = 40 + 120 * v + 30 * np.cos(5.0 * u * v + seed)
    blue = 200 - 120 * np.hypot(u - 0.4, v - 0.6)
    img = np.stack([red, green, blue], -1)
    for _ in range(4):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.08, 0.3) * width, rng.uniform(0.08, 0.3) * height
        img[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1] = rng.uniform(0, 255, 3)
    for _ in range(2):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(2, max(3, width // 3))), int(rng.integers(2, max(3, height // 3)))
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_images(folder):
    """Saves the test images; returns their file names."""
    files = []

    def save(image, name, **kwargs):
        image.save(folder / name, **kwargs)
        files.append(name)

    for width, height, seed in [(97, 61, 1), (320, 240, 2), (64, 64, 3)]:
        photo = Image.fromarray(synthetic_photo(width, height, seed), "RGB")
        stem = f"photo_{width}x{height}"
        save(photo, f"{stem}.png")
        save(photo, f"{stem}.jpg", quality=90)  # Pillow's default chroma subsampling at q90: 4:2:0
        if (width, height) == (320, 240):
            save(photo, f"{stem}_progressive.jpg", quality=90, progressive=True)
        if (width, height) == (64, 64):
            save(photo, f"{stem}_444.jpg", quality=90, subsampling=0)
            save(photo, f"{stem}_422.jpg", quality=90, subsampling=1)
            save(photo, f"{stem}_q50_progressive_444.jpg", quality=50, progressive=True, subsampling=0)
    # odd sizes that leave partial MCUs in both directions, 4:2:0
    save(Image.fromarray(synthetic_photo(45, 29, 4), "RGB"), "photo_45x29.jpg", quality=95)
    # restart markers (Pillow >= 10.2 writes them with restart_marker_blocks; older versions ignore the option)
    save(Image.fromarray(synthetic_photo(61, 47, 5), "RGB"), "photo_61x47_restart.jpg", quality=85, restart_marker_blocks=3)

    gray = Image.fromarray(synthetic_photo(64, 48, 6)).convert("L")
    save(gray, "gray_64x48.png")
    save(gray, "gray_64x48.jpg", quality=90)

    rgba = np.dstack([synthetic_photo(97, 61, 7), np.tile(np.linspace(0, 255, 97).astype(np.uint8), (61, 1))])
    save(Image.fromarray(rgba, "RGBA"), "rgba_97x61.png")
    save(Image.fromarray(synthetic_photo(97, 61, 8), "RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT), "palette_97x61.png")

    oriented = Image.fromarray(synthetic_photo(40, 24, 9), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    save(oriented, "oriented6_40x24.jpg", quality=90, exif=exif.tobytes())
    return files


def has_restart_markers(path):
    return b"\xff\xdd" in path.read_bytes()


def main(out_dir="fixtures"):
    import torch
    import transformers
    from safetensors.numpy import save_file
    from transformers import AutoImageProcessor, CLIPImageProcessor, SiglipImageProcessor

    torch.manual_seed(0)
    folder = Path(out_dir) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    files = write_images(folder)

    tensors = {}
    for name in files:
        with Image.open(folder / name) as im:
            tensors[f"decoded/{name}"] = np.ascontiguousarray(np.array(im.convert("RGB")))
            if im.getexif().get(0x0112, 1) != 1:
                tensors[f"decoded_exif/{name}"] = np.ascontiguousarray(np.array(ImageOps.exif_transpose(im).convert("RGB")))

    configs = {
        "clip": CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 30, "width": 30}),
        "siglip": SiglipImageProcessor(size={"height": 32, "width": 32}),
    }
    meta = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "files": files,
        "restart_markers": {name: has_restart_markers(folder / name) for name in files if name.endswith(".jpg")},
        "auto_class": {},
        "backends": {},
    }
    try:
        import torchvision

        meta["torchvision"] = torchvision.__version__
    except ImportError:
        meta["torchvision"] = None

    for family, processor in configs.items():
        processor.save_pretrained(folder / family)
        loaders = {"auto": {}}
        if meta["torchvision"]:
            loaders["torchvision"] = {"backend": "torchvision"}
        loaders["pil"] = {"backend": "pil"}
        meta["backends"][family] = {}
        for backend, kwargs in loaders.items():
            loaded = AutoImageProcessor.from_pretrained(folder / family, **kwargs)
            meta["backends"][family][backend] = type(loaded).__name__
            if backend == "auto":
                meta["auto_class"][family] = f"{type(loaded).__module__}.{type(loaded).__name__}"
            for name in files:
                with Image.open(folder / name) as im:
                    pixels = loaded(images=im, return_tensors="pt")["pixel_values"]
                tensors[f"{family}/{backend}/{name}"] = np.ascontiguousarray(pixels.to(torch.float32).numpy())

    save_file(tensors, str(folder / "processor_goldens.safetensors"))
    (folder / "processor_goldens.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(files)} images and {len(tensors)} golden arrays to {folder}")
    print(json.dumps({k: meta[k] for k in ("transformers", "torchvision", "cpu_capability", "auto_class", "restart_markers")}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures")
