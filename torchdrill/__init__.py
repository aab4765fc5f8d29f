"""torchdrill: the helpers a student may import while working through *Dive into Deep Learning*.

- :mod:`torchdrill.data` -- the data root, MNIST and Fashion-MNIST loaders (§3.5), the offline
  fallbacks (a seeded split of the official test set, or generated digits) and ``load_array``
  (§3.3).
- :mod:`torchdrill.plot` -- ``plot``, ``show_images``, ``Animator`` and ``show_trace_2d`` as in
  the book (§2.4, §3.5, §3.6, §11.3) and the notes' ``plot_surface``, drawing inline in a
  notebook and to PNG files elsewhere.
- :mod:`torchdrill.callables` -- the functions the course's tests hand to student code; not
  for a submission to import (course.toml lists ``torchdrill.plot`` and ``torchdrill.data``):
  its ``sgd_epochs`` trains a net.

Nothing a submission may import is an exercise's answer: no softmax, loss, training loop or
accuracy. Importing the
package imports none of its modules; ``import torchdrill.data`` (or ``from torchdrill import
data``) loads what it needs when asked.
"""

__version__ = "0.1.0"
