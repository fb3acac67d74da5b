"""`python -m gtpt ...` (also what `torchrun -m gtpt train ...` runs)."""
import sys

from .cli import main

sys.exit(main())
