#!/usr/bin/env python3
"""A minimal prediction server around the PyTorch reference model, for bench/predict-load.ts.

Same contract as POST /v1/predict for the two payloads the benchmark sends: a raw
image/png body (one 28x28 image) and JSON {"instances": [{"image": "<base64 PNG>"}, ...]}.
PNGs are decoded with Pillow, normalised with MNIST's constants and run through the
seed network (shared/reference/pytorch_seed_recipe.py) in eval mode, one forward pass
per request. The weights are untrained: speed does not depend on them.

Run: /usr/bin/python3 bench/pytorch_server.py --port 8500 [--threads 1]
"""
import argparse
import base64
import io
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference"))
from pytorch_seed_recipe import Net  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def decode(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png)).convert("L")
    if image.size != (28, 28):
        raise ValueError(f"image is {image.size[0]}x{image.size[1]}; expected 28x28")
    return np.asarray(image, dtype=np.float32)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load generator expects
    disable_nagle_algorithm = True  # headers and body go out in separate writes; don't wait 40 ms for an ACK
    model: torch.nn.Module

    def log_message(self, *args):  # no per-request logging
        pass

    def reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            if self.headers.get("Content-Type", "").startswith("image/png"):
                images = [decode(body)]
            else:
                images = [decode(base64.b64decode(i["image"])) for i in json.loads(body)["instances"]]
        except (ValueError, KeyError, OSError) as error:
            return self.reply(400, {"detail": str(error)})
        x = torch.from_numpy(np.stack(images)).div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
        with torch.no_grad():
            probabilities = self.model(x).exp()  # the model ends in log_softmax
        predictions = [
            {"label": int(p.argmax()), "confidence": float(p.max()), "probabilities": p.tolist()} for p in probabilities
        ]
        self.reply(200, {"predictions": predictions, "model": {"version": "pytorch", "dataset": "mnist"}})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    Handler.model = Net().eval()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
