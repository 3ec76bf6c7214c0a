from django.db import migrations

# Frozen copy of the profiles at the time of this migration (migrations must not import code that changes).
PROFILES = {
    "light": ("Light", ["exposure"], "top100", 300, 60),
    "standard": ("Standard", ["tls", "http", "exposure"], "top1000", 900, 120),
    "deep": ("Deep", ["tls", "http", "exposure", "nmap"], "all", 3600, 600),
}


def create_profiles(apps, schema_editor):
    ScanProfile = apps.get_model("scans", "ScanProfile")
    for slug, (name, scanners, ports, budget, job_timeout) in PROFILES.items():
        ScanProfile.objects.update_or_create(
            org=None, slug=slug,
            defaults={"name": name, "scanners": scanners, "ports": ports,
                      "time_budget_seconds": budget, "job_timeout_seconds": job_timeout},
        )


def remove_profiles(apps, schema_editor):
    apps.get_model("scans", "ScanProfile").objects.filter(org=None, slug__in=PROFILES).delete()


class Migration(migrations.Migration):
    dependencies = [("scans", "0001_initial")]
    operations = [migrations.RunPython(create_profiles, remove_profiles)]
