"""NodeListVersion and, on PostgreSQL, the triggers that keep it (see the model's docstring).

The trigger is a deferred constraint trigger, so it runs at commit, after every other lock
the transaction took: the version row is locked last and only for the commit, so writers
never wait on each other's long transactions for it and cannot deadlock through it. A
transaction-local setting remembers which organizations it already bumped, so a bulk
update of 10,000 nodes writes the version row once, not 10,000 times. Other databases
(the embedded SQLite default) get the table and no triggers; readers then cache nothing.
"""

from django.db import migrations, models

TABLES = ("nodes_node", "nodes_nodesnapshot")

CREATE = """
CREATE SEQUENCE IF NOT EXISTS nodes_list_version_seq;
CREATE OR REPLACE FUNCTION nodes_bump_list_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  org bigint;
  bumped text := coalesce(current_setting('watchpost.node_list_bumped', true), '');
BEGIN
  IF TG_OP = 'DELETE' THEN org := OLD.org_id; ELSE org := NEW.org_id; END IF;
  IF position(',' || org || ',' IN bumped) > 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO nodes_nodelistversion (org_id, version) VALUES (org, nextval('nodes_list_version_seq'))
    ON CONFLICT (org_id) DO UPDATE SET version = EXCLUDED.version;
  IF TG_OP = 'UPDATE' AND OLD.org_id IS DISTINCT FROM NEW.org_id THEN
    INSERT INTO nodes_nodelistversion (org_id, version) VALUES (OLD.org_id, nextval('nodes_list_version_seq'))
      ON CONFLICT (org_id) DO UPDATE SET version = EXCLUDED.version;
  END IF;
  PERFORM set_config('watchpost.node_list_bumped', CASE WHEN bumped = '' THEN ',' ELSE bumped END || org || ',', true);
  RETURN NULL;
END $$;
"""

DROP = "DROP FUNCTION IF EXISTS nodes_bump_list_version() CASCADE; DROP SEQUENCE IF EXISTS nodes_list_version_seq;"


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_list_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION nodes_bump_list_version()")


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)  # CASCADE drops the triggers with their function


class Migration(migrations.Migration):
    dependencies = [("nodes", "0002_initial")]

    operations = [
        migrations.CreateModel(
            name="NodeListVersion",
            fields=[
                ("org_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("version", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
