from django.utils.functional import SimpleLazyObject

from orgs.selectors import organization_list_for_user


def organizations(request):
    """The organization switcher's list and the navigation's open-intervention count, for every console page.

    The count is lazy: it costs one indexed query only on pages that render the navigation.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_organizations": []}
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match is not None else None
    return {
        "user_organizations": organization_list_for_user(user=user),
        "nav_open_interventions": SimpleLazyObject(lambda: _open_interventions(user, slug)),
    }


def _open_interventions(user, slug):
    from interventions.models import Intervention

    if not slug:
        return 0
    return Intervention.objects.unresolved().filter(org__slug=slug, org__memberships__user=user).count()
