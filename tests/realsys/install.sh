#!/usr/bin/env bash
# Installs the real systems Ferry's end-to-end tests run against, and builds the
# database snapshots every scenario starts from. Idempotent: each step is skipped
# when its stamp matches its inputs.
#   - Tryton 8.2 (ERP) from PyPI into .venv-tryton, pinned in requirements-tryton.txt
#   - Redmine 5.0.4 (PSA) from Debian apt (needs root the first time), pinned below
#   - snapshots in .ferry/realsys/snapshots: Tryton set up by setup_erp.py, Redmine
#     migrated, seeded with its default data, REST enabled, an API key and custom fields
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/realsys
STATE=.ferry/realsys
SNAP=$STATE/snapshots
VENV=.venv-tryton
REDMINE_VERSION=5.0.4-5+deb12u1
# Fixed test credentials (loopback only, throw-away databases).
: "${FERRY_TRYTON_REST_KEY:=ferry-e2e-rest-key-0123456789abcdef}"
: "${FERRY_REDMINE_API_KEY:=feedfacefeedfacefeedfacefeedfacefeedface}"
mkdir -p "$SNAP"
say() { echo "realsys: $*" >&2; }
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- Tryton ---------------------------------------------------------------
want=$(stamp_of $HERE/requirements-tryton.txt)
if [[ "$(cat $VENV/.stamp 2>/dev/null)" != "$want" ]]; then
  say "installing Tryton 8.2 into $VENV (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r $HERE/requirements-tryton.txt
  echo "$want" > $VENV/.stamp
fi

# --- Redmine --------------------------------------------------------------
if [[ "$(dpkg-query -W -f='${Version}' redmine 2>/dev/null || true)" != "$REDMINE_VERSION" ]]; then
  if [[ $EUID -ne 0 ]]; then
    say "Redmine $REDMINE_VERSION is not installed and installing it needs root (apt-get)"; exit 2
  fi
  say "installing Redmine $REDMINE_VERSION (Debian apt)"
  export DEBIAN_FRONTEND=noninteractive
  debconf-set-selections <<'SEL'
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
SEL
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "redmine=$REDMINE_VERSION" "redmine-sqlite=$REDMINE_VERSION" \
    > "$STATE/apt.log" 2>&1 || { tail -20 "$STATE/apt.log" >&2; exit 2; }
fi
# Debian ships no app server in the bundle; webrick is installed but must be named.
grep -qs webrick /usr/share/redmine/Gemfile.local || echo "gem 'webrick'" >> /usr/share/redmine/Gemfile.local

# --- Snapshots ------------------------------------------------------------
want=$(stamp_of $HERE/setup_erp.py $HERE/requirements-tryton.txt $HERE/install.sh <(echo "$FERRY_TRYTON_REST_KEY"))
if [[ "$(cat $SNAP/erp.stamp 2>/dev/null)" != "$want" || ! -s $SNAP/erp.sqlite ]]; then
  say "building the Tryton snapshot (database, chart, fiscal years, products, REST key)"
  W=$(mktemp -d)
  mkdir -p "$W/db"
  printf '[database]\nuri = sqlite://\npath = %s/db\nlist = False\n' "$W" > "$W/trytond.conf"
  touch "$W/db/erp.sqlite"
  echo admin > "$W/admin.pass"
  TRYTONPASSFILE="$W/admin.pass" "$VENV/bin/trytond-admin" -c "$W/trytond.conf" -d erp --all \
    --email admin@example.com --activate-dependencies \
    -u party company currency product account account_product account_invoice \
       analytic_account project timesheet project_invoice > "$STATE/tryton-admin.log" 2>&1 \
    || { tail -20 "$STATE/tryton-admin.log" >&2; exit 2; }
  "$VENV/bin/python" $HERE/setup_erp.py "$W/trytond.conf" erp "$FERRY_TRYTON_REST_KEY" >&2
  "$VENV/bin/python" - "$W/db/erp.sqlite" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()
PY
  cp "$W/db/erp.sqlite" "$SNAP/erp.sqlite"
  rm -rf "$W"
  echo "$want" > $SNAP/erp.stamp
fi

want=$(stamp_of $HERE/install.sh <(echo "$FERRY_REDMINE_API_KEY" "$REDMINE_VERSION"))
if [[ "$(cat $SNAP/redmine.stamp 2>/dev/null)" != "$want" || ! -s $SNAP/redmine.sqlite3 ]]; then
  say "building the Redmine snapshot (migrations, default data, API key, custom fields)"
  DB=$(realpath -m "$SNAP/redmine.sqlite3")
  rm -f "$DB"
  (
    cd /usr/share/redmine
    export RAILS_ENV=production DATABASE_URL="sqlite3:$DB"
    bin/rake db:migrate
    REDMINE_LANG=en bin/rake redmine:load_default_data
    bin/rails runner "
      Setting.rest_api_enabled = '1'
      u = User.find_by_login('admin'); u.update!(must_change_passwd: false)
      t = Token.create!(user: u, action: 'api'); t.update_column(:value, '$FERRY_REDMINE_API_KEY')
      TimeEntryCustomField.create!(name: 'Billable', field_format: 'bool', default_value: '1', visible: true)
      TimeEntryCustomField.create!(name: 'Approved', field_format: 'bool', default_value: '0', visible: true)
    "
  ) > "$STATE/redmine-setup.log" 2>&1 || { tail -20 "$STATE/redmine-setup.log" >&2; exit 2; }
  echo "$want" > $SNAP/redmine.stamp
fi
say "installed; snapshots in $SNAP"
