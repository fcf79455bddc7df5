"""The lecture's autoencoders as small nn.Modules: fully connected, convolutional, sparse and variational.

Every model takes and returns flat images x: (N, 784) in [0, 1], has `encode(x)` and `decode(z)`, and
keeps its constructor keyword arguments in `self.config` so a checkpoint can rebuild it.
`forward` checks only the type and shape of x (no scan over the values): it runs on every training
batch, and a value check would cost a device -> host sync on a GPU.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from funml_lib._validate import check_positive_int, check_rows

PIXELS = 784  # 28 x 28 MNIST digit, flattened


class FCAutoencoder(nn.Module):
    """Fully connected autoencoder 784 -> hidden_dims -> latent_dim -> reversed(hidden_dims) -> 784.

    nonlinear=True: ReLU after every hidden layer, linear code z, sigmoid output in (0, 1).
    nonlinear=False: only Linear layers, no activation anywhere (the "linear AE" of the lecture),
    so x_hat = A x + b is an affine map of x.
    """

    def __init__(self, latent_dim: int = 10, hidden_dims: tuple[int, ...] = (256,), nonlinear: bool = True):
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        if not isinstance(hidden_dims, (tuple, list)) or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden_dims):
            raise ValueError(f"hidden_dims must be a tuple of ints >= 1 (may be empty), got {hidden_dims!r}")
        if not isinstance(nonlinear, bool):
            raise TypeError(f"nonlinear must be a bool, got {type(nonlinear).__name__}")
        hidden_dims = tuple(hidden_dims)
        self.config = {"latent_dim": latent_dim, "hidden_dims": hidden_dims, "nonlinear": nonlinear}
        self.latent_dim = latent_dim
        self.encoder = self._stack((PIXELS, *hidden_dims, latent_dim), nonlinear, last=None)
        self.decoder = self._stack((latent_dim, *reversed(hidden_dims), PIXELS), nonlinear,
                                   last=nn.Sigmoid() if nonlinear else None)

    @staticmethod
    def _stack(sizes: tuple[int, ...], nonlinear: bool, last: nn.Module | None) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if nonlinear and i < len(sizes) - 2:
                layers.append(nn.ReLU())
        if last is not None:
            layers.append(last)
        return nn.Sequential(*layers)

    @property
    def W1(self) -> Tensor:
        """Weight of the first encoder layer, (first hidden size, 784): one 28x28 filter per row."""
        return self.encoder[0].weight

    def encode(self, x: Tensor) -> Tensor:
        """Code z = E_theta(x): (N, 784) -> (N, latent_dim)."""
        return self.encoder(check_rows("x", x, PIXELS))

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction x_hat = G_phi(z): (N, latent_dim) -> (N, 784)."""
        return self.decoder(check_rows("z", z, self.latent_dim))

    def forward(self, x: Tensor) -> Tensor:
        """x_hat = G_phi(E_theta(x)): (N, 784) -> (N, 784)."""
        return self.decoder(self.encoder(check_rows("x", x, PIXELS)))


class ConvAutoencoder(nn.Module):
    """Small convolutional autoencoder; takes and returns flat (N, 784) images.

    Encoder: (N,1,28,28) -conv s2-> (N,16,14,14) -conv s2-> (N,32,7,7) -linear-> (N, latent_dim).
    Decoder mirrors it with ConvTranspose2d; ReLU inside, sigmoid output.
    """

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        self.config = {"latent_dim": latent_dim}
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),   # 28 -> 14
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 32 * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),
            # output_padding=1 makes each transposed conv exactly undo the stride-2 halving: 7 -> 14 -> 28
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
            nn.Flatten(),
        )

    def encode(self, x: Tensor) -> Tensor:
        """Code z: (N, 784) -> (N, latent_dim)."""
        return self.encoder(check_rows("x", x, PIXELS))

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction x_hat in (0, 1): (N, latent_dim) -> (N, 784)."""
        return self.decoder(check_rows("z", z, self.latent_dim))

    def forward(self, x: Tensor) -> Tensor:
        """x_hat: (N, 784) -> (N, 784)."""
        return self.decoder(self.encoder(check_rows("x", x, PIXELS)))


class SparseAutoencoder(nn.Module):
    """One-hidden-layer autoencoder 784 -> hidden_dim -> 784 with sigmoid code z in (0, 1).

    The sigmoid makes z_ij readable as a Bernoulli mean, which the KL sparsity penalty assumes.
    """

    def __init__(self, hidden_dim: int = 128):
        super().__init__()
        check_positive_int("hidden_dim", hidden_dim)
        self.config = {"hidden_dim": hidden_dim}
        self.hidden_dim = hidden_dim
        self.encoder = nn.Sequential(nn.Linear(PIXELS, hidden_dim), nn.Sigmoid())
        self.decoder = nn.Sequential(nn.Linear(hidden_dim, PIXELS), nn.Sigmoid())

    @property
    def W1(self) -> Tensor:
        """Encoder weight W^(1): (hidden_dim, 784), one 28x28 filter per row (the parameter itself)."""
        return self.encoder[0].weight

    def encode(self, x: Tensor) -> Tensor:
        """Activations z = sigmoid(W1 x + b1): (N, 784) -> (N, hidden_dim), in (0, 1)."""
        return self.encoder(check_rows("x", x, PIXELS))

    def decode(self, z: Tensor) -> Tensor:
        """x_hat = sigmoid(W2 z + b2): (N, hidden_dim) -> (N, 784)."""
        return self.decoder(check_rows("z", z, self.hidden_dim))

    def forward(self, x: Tensor) -> Tensor:
        """x_hat: (N, 784) -> (N, 784)."""
        return self.decoder(self.encoder(check_rows("x", x, PIXELS)))


class VAE(nn.Module):
    """Fully connected VAE 784 -> hidden_dim -> (mu, logvar) -> hidden_dim -> 784, ReLU hidden.

    q_theta(z|x) = N(mu, diag exp(logvar)), p(z) = N(0, I), p_phi(x|z) = Bernoulli(sigmoid(logits)).
    """

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400):
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("hidden_dim", hidden_dim)
        self.config = {"latent_dim": latent_dim, "hidden_dim": hidden_dim}
        self.latent_dim = latent_dim
        self.encoder_hidden = nn.Linear(PIXELS, hidden_dim)
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder_hidden = nn.Linear(latent_dim, hidden_dim)
        self.to_logits = nn.Linear(hidden_dim, PIXELS)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of q(z|x): x (N, 784) -> mu (N, latent_dim), logvar = log sigma^2 (N, latent_dim)."""
        h = torch.relu(self.encoder_hidden(check_rows("x", x, PIXELS)))
        return self.to_mu(h), self.to_logvar(h)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Sample z ~ q(z|x) differentiably: z = mu + exp(logvar / 2) * eps, eps ~ N(0, I). Shape of mu."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode_logits(self, z: Tensor) -> Tensor:
        """Bernoulli logits of p(x|z): (N, latent_dim) -> (N, 784); use with BCE-with-logits."""
        h = torch.relu(self.decoder_hidden(check_rows("z", z, self.latent_dim)))
        return self.to_logits(h)

    def decode(self, z: Tensor) -> Tensor:
        """Pixel means x_hat = sigmoid(logits) in (0, 1): (N, latent_dim) -> (N, 784)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One pass with one sampled z: x (N, 784) -> (x_hat (N, 784), mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class PyTorchExamplesVAE(nn.Module):
    """The architecture of pytorch/examples vae/main.py (784-400-20, ReLU, sigmoid output), our own code.

    Layer names fc1, fc21 (mu), fc22 (logvar), fc3, fc4 follow that example so the two read side by side.
    Used as the baseline in chapter 5 and in the benchmark; `decode_logits` lets vae_loss train it too.
    """

    def __init__(self):
        super().__init__()
        self.config: dict = {}
        self.latent_dim = 20
        self.fc1 = nn.Linear(PIXELS, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, PIXELS)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, 784) -> (mu, logvar), each (N, 20)."""
        h1 = torch.relu(self.fc1(check_rows("x", x, PIXELS)))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode_logits(self, z: Tensor) -> Tensor:
        """z (N, 20) -> logits (N, 784)."""
        return self.fc4(torch.relu(self.fc3(check_rows("z", z, 20))))

    def decode(self, z: Tensor) -> Tensor:
        """z (N, 20) -> recon = sigmoid(logits) (N, 784)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (N, 784) -> (recon (N, 784), mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar
