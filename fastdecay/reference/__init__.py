"""Plain NumPy oracles: slow, obvious closed forms and loops that the tests trust.

Nothing here reads the packed segment table or calls a kernel; each function is
the formula as a textbook (or torch's documentation) writes it.
"""

from ._schedules import *  # noqa: F401,F403
from ._schedules import __all__ as _schedules_all
from ._updates import *  # noqa: F401,F403
from ._updates import __all__ as _updates_all
from ._simulate import *  # noqa: F401,F403
from ._simulate import __all__ as _simulate_all
from ._expected import *  # noqa: F401,F403
from ._expected import __all__ as _expected_all

__all__ = [*_schedules_all, *_updates_all, *_simulate_all, *_expected_all]
