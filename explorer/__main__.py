"""$ python -m explorer --help"""

import sys

from explorer.run.cli import main

sys.exit(main())
