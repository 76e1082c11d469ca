r"""Data for the flows: 2D images turned into samples (the paper's pictures ship with the package), drawn test pictures, MNIST, Gaussian mixtures.

* :mod:`.images` -- grey-level pictures as densities on :math:`[-\frac12, \frac12]^2` and samples ``[n, 2]``
  from them, and the book's drawn pictures (Altekrüger, Hertrich, Steidl 2023, Sec. 6 and App. F);
* :mod:`.mnist` -- the MNIST loader (canonical md5-checked IDX files, ``MMDFLOW_DATA``);
* :mod:`.mixtures` -- sampled Gaussian mixtures and the initial particles of the IFT experiments
  (Gladin et al. 2024).

Every public name is re-exported here (``mmdflow.data.load_mnist``, ``mmdflow.data.house_image``, ...).
The data modules import nothing above :mod:`mmdflow.kernels`.
"""

from . import images, mixtures, mnist
from .images import (MAX_PIXELS, PAPER_IMAGES, PAPER_OUTPUTS, grey_levels, house_image, image_to_density, image_to_samples,
                     paper_image, paper_output_image, resize_grey, smiley_image, text_image)
from .mixtures import GaussianMixture, gaussian_2d, initial_particles, mixture_2d, mixture_100d
from .mnist import MNIST, MNIST_FILES, MNIST_MIRRORS, DataIntegrityError, load_mnist, mnist_dir

__all__ = ["images", "mnist", "mixtures",
           *images.__all__, *mnist.__all__, *mixtures.__all__]
