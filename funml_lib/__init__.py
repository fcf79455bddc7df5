"""funml_lib: the library behind the course book "FunML: Autoencoder Extensions".

Chapters import the names below. A few submodules are imported by name where a chapter uses them:
`funml_lib.widgets` (the explorers), `funml_lib.self_checks` (exercise self-checks and
`check_numbers`), `funml_lib.frames` (light PNG frames), `funml_lib.estimators` (the gradient and
KL estimators of chapter 4), `funml_lib.live` (the live views of chapters 2, 3 and 5: the chapter's
trained models run in the reader's browser) and `funml_lib.checkpoints` (saving a trained model; also
exported below). Everything else is an implementation detail.
"""
from funml_lib.checkpoints import load_checkpoint, save_checkpoint
from funml_lib.claims import claim
from funml_lib.corruptions import corrupt_gaussian, corrupt_mask, corrupt_salt_pepper
from funml_lib.data import (
    data_source,
    describe_data,
    load_mnist,
)
from funml_lib.losses import (
    autoencoder_loss,
    gaussian_kl,
    kl_sparsity,
    l1_sparsity,
    sparse_loss,
    vae_loss,
)
from funml_lib.metrics import (
    activations,
    importance_sampled_nll,
    negative_elbo,
    reconstruction_mse,
    sparsity_stats,
)
from funml_lib.models import (
    VAE,
    ConvAutoencoder,
    FCAutoencoder,
    PyTorchExamplesVAE,
    SparseAutoencoder,
)
from funml_lib.parameters import check_parameters, grading_run
from funml_lib.probes import (
    identity_test,
    linear_dae_optimum,
    linear_map,
    linear_probe,
    probe_images,
)
from funml_lib.plotting import (
    plot_filters,
    plot_history,
    plot_kl_sparsity_curve,
    plot_latent_scatter,
    plot_manifold,
    show_images,
    show_rows,
)
from funml_lib.train import (
    evaluate,
    fit,
    pick_device,
    seed_everything,
)

__version__ = "0.1.0"
