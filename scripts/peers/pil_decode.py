"""The image-decoding peer of scripts/images-bench.ts: every image file of an image folder decoded by PIL
(libjpeg-turbo, libpng), as torchvision's ImageFolder loads one (`Image.open(f).convert('RGB')`), timed, in the
order of a sorted walk. Prints one JSON line: {"peer", "pil", "files", "seconds"}.

Usage: python3 pil_decode.py DIR   (needs `apt-get install -y python3-pil`)
"""
import json
import os
import sys
import time

from PIL import Image

EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff')

root = sys.argv[1]
files = []
for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
    files += [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(EXTENSIONS) and not n.startswith('.')]
start = time.perf_counter()
for f in files:
    with Image.open(f) as img:
        img.convert('RGB').tobytes()
seconds = time.perf_counter() - start
print(json.dumps({'peer': 'pil', 'pil': Image.__version__, 'files': len(files), 'seconds': round(seconds, 3)}))
