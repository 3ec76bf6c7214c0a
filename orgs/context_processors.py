from orgs.selectors import organization_list_for_user


def organizations(request):
    """The organization switcher's list, for every console page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_organizations": []}
    return {"user_organizations": organization_list_for_user(user=user)}
