from django.utils.functional import SimpleLazyObject

from interventions.models import Intervention


def open_interventions(request):
    """The navigation's open-intervention count, for every console page of an organization.

    Lazy: it costs one indexed query only on pages that render the navigation.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match is not None else None
    return {"nav_open_interventions": SimpleLazyObject(lambda: _open_count(user, slug))}


def _open_count(user, slug):
    if not slug:
        return 0
    return Intervention.objects.unresolved().filter(org__slug=slug, org__memberships__user=user).count()
