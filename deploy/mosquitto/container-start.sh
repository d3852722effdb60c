#!/bin/sh
# Start Mosquitto in a container with the shipped configuration (deploy/compose.yaml):
# - the configuration is /etc/sealwatch-mosquitto/mosquitto.conf (deploy/mosquitto/
#   mosquitto.conf) with two changes: logs go to stdout (a container has no syslog), and the
#   broker's key is a copy readable by this container's mosquitto user (the host's group
#   mosquitto, which credentials.py gave it, may have another id here);
# - the plugin's state file starts as the one credentials.py wrote (in the certificates
#   folder) and then lives in the /var/lib/mosquitto volume, owned by the mosquitto user, which
#   rewrites it on every change made with mosquitto_ctrl.
set -eu
conf=/etc/sealwatch-mosquitto/mosquitto.conf
state=/var/lib/mosquitto/dynamic-security.json
if [ ! -f "$state" ]; then
  cp /etc/mosquitto/sealwatch/dynamic-security.json "$state"
fi
chown -R mosquitto:mosquitto /var/lib/mosquitto
chmod 0600 "$state"
install -d -m 0750 -o root -g mosquitto /run/sealwatch-tls
install -m 0640 -o root -g mosquitto /etc/mosquitto/sealwatch/broker.key /run/sealwatch-tls/broker.key
sed -e 's/^log_dest syslog$/log_dest stdout/' \
    -e 's#^keyfile .*#keyfile /run/sealwatch-tls/broker.key#' "$conf" >/run/mosquitto.conf
exec mosquitto -c /run/mosquitto.conf
