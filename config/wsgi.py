"""The WSGI application, for gunicorn: ``gunicorn config.wsgi``."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Import the URL conf (and with it every view, serializer and API module) now, while the
# worker boots, rather than inside somebody's first request.
get_resolver().url_patterns

# Everything loaded so far (Django, DRF, the URL conf, the apps' modules) lives as long as the
# process: moved out of the collector's reach, a full collection does not walk those
# hundreds of thousands of objects in the middle of somebody's request, a pause the API's
# slowest requests would otherwise carry.
gc.freeze()
