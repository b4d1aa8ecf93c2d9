#!/usr/bin/env bash
# Refresh the vendored front-end files from npm (pinned versions): the icons
# the pages use (Lucide, ISC licence) and axe-core for the browser tests'
# accessibility checks (MPL-2.0). The files are committed; nothing is fetched
# at run time and no page loads anything from a CDN.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
LUCIDE=lucide-static@1.87.0
AXE=axe-core@4.14.1
# Every icon a template or templates_catalog/icons.py names.
ICONS=(
  megaphone chart-column mail headset shopping-bag graduation-cap users image
  layout-template scale calendar-clock lightbulb newspaper handshake pen-line
  clapperboard languages search star history chart-no-axes-column user-round
  menu x log-out key-round shield copy refresh-cw square sparkles file-text
  arrow-right globe check download trash-2 circle-help clock chevron-down
  layout-grid circle-alert info house settings message-circle mail-open
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$LUCIDE" "$AXE")
icons="$here/static/vendor/lucide"
rm -rf "$icons" && mkdir -p "$icons"
cp "$work/node_modules/lucide-static/LICENSE" "$icons/LICENSE"
for name in "${ICONS[@]}"; do
  cp "$work/node_modules/lucide-static/icons/$name.svg" "$icons/"
done
axe="$here/tests/browser/vendor"
mkdir -p "$axe"
cp "$work/node_modules/axe-core/axe.min.js" "$axe/axe.min.js"
cp "$work/node_modules/axe-core/LICENSE" "$axe/axe-LICENSE.txt"
echo "Vendored ${#ICONS[@]} icons ($LUCIDE) and $AXE."
