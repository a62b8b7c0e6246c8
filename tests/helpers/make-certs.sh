#!/bin/sh
# make-certs.sh DIR: a throwaway CA, a server certificate for localhost/127.0.0.1, client
# certificates for "alice" and "bob" signed by the CA, and "mallory" signed by another CA.
set -eu
d=$1
mkdir -p "$d"
cd "$d"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=shepherd test CA"
q openssl req -x509 -newkey rsa:2048 -nodes -keyout evil-ca.key -out evil-ca.crt -days 2 -subj "/CN=other CA"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
q openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
q openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext
printf 'extendedKeyUsage=clientAuth\n' >client.ext
for who in alice bob; do
	q openssl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" -subj "/O=shepherd tests/CN=$who"
	q openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$who.crt" -days 2 -extfile client.ext
done
q openssl req -newkey rsa:2048 -nodes -keyout mallory.key -out mallory.csr -subj "/CN=root"
q openssl x509 -req -in mallory.csr -CA evil-ca.crt -CAkey evil-ca.key -CAcreateserial -out mallory.crt -days 2 -extfile client.ext
chmod 600 ./*.key
