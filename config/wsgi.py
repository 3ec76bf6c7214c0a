"""The WSGI application, for gunicorn: ``gunicorn config.wsgi``."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Everything loaded so far (Django, DRF, the URL conf, the apps' modules) lives as long as the
# process: moved out of the collector's reach, a full collection no longer walks those
# hundreds of thousands of objects in the middle of somebody's request — the pauses that
# made up the API's slowest percentile.
gc.freeze()
