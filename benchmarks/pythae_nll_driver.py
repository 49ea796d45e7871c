"""Times pythae's own importance-sampled NLL (``VAE.get_nll``) for the benchmark comparison.

Run with the peers' torch environment (``../shared/peers/setup.sh``)::

  /tmp/peers-torch/bin/python benchmarks/pythae_nll_driver.py --images=50 --k=5000

Model: pythae's default MLP VAE for 28x28x1 (784-512-16, Bernoulli/BCE), untrained (the
cost does not depend on the weights). Prints one JSON line with images/s.
"""

import argparse
import json
import time

import torch
from pythae.models import VAE, VAEConfig

parser = argparse.ArgumentParser()
parser.add_argument("--images", type=int, default=50)
parser.add_argument("--k", type=int, default=5000)
parser.add_argument("--batch_size", type=int, default=100, help="get_nll's sample batch")
args = parser.parse_args()
torch.set_num_threads(2)
torch.manual_seed(0)
model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=16, reconstruction_loss="bce")).eval()
data = (torch.rand(args.images, 1, 28, 28) > 0.5).float()
with torch.no_grad():
  model.get_nll(data[:2], n_samples=args.k, batch_size=args.batch_size)  # warm-up
  t0 = time.perf_counter()
  nll = model.get_nll(data, n_samples=args.k, batch_size=args.batch_size)
  elapsed = time.perf_counter() - t0
print(json.dumps({"name": f"pythae_get_nll_k{args.k}_mlp", "num_images": args.images,
                  "importance_samples": args.k, "seconds": elapsed,
                  "images_per_s": args.images / elapsed, "nll": float(nll),
                  "torch": torch.__version__}))
