"""``python -m immuta_provider.doctor``: the same as the ``immuta-doctor`` console script."""

from immuta_provider.doctor.cli import main

raise SystemExit(main())
