#!/bin/sh
# Builds the site's own iPXE boot programs from the pinned upstream release, with the site's
# CA as the only trust anchor, so every script iPXE fetches comes over HTTPS from a server
# that CA signed.
#
#   build-ipxe.sh --source ipxe-2.0.0.tar.gz --trust site-ca.pem --out /var/lib/netboot/ipxe \
#                 [--embed script.ipxe] [--arch x86_64,arm64] [--serial-console] \
#                 [--sha256 HEX] [--jobs N]
#
# Needs: sh, tar, gzip, sha256sum, openssl, patch, make, gcc, binutils, perl, liblzma-dev
# (Debian: apt-get install gcc binutils make patch perl liblzma-dev openssl), and for
# --arch arm64 also gcc-aarch64-linux-gnu. Nothing is downloaded.
#
# Output (written only when everything built; a failed build leaves --out as it was):
#   undionly.kpxe      BIOS PXE (chainloaded through the NIC's PXE stack)
#   snponly.efi        x86_64 UEFI, through the firmware's network stack (PXE and HTTP Boot)
#   ipxe.efi           x86_64 UEFI with iPXE's own NIC drivers
#   snponly-arm64.efi, ipxe-arm64.efi   the same for ARM64 UEFI (--arch arm64)
#   ipxe-build.toml    what was built from what: source hash, CA fingerprints, options
#
# This script is the one recipe: `cargo xtask ipxe` in the netboot repository runs it too
# (adding a build cache and the Debian packages).
set -eu

# Releases this script knows, as "SHA-256 file-name commit". The tarball is the project's
# `git archive` of the release tag; `zcat FILE | git get-tar-commit-id` prints its commit.
PINNED="907009e4faa3947c823849cf0dc077456290f738d455376fa965f7531bb99562 ipxe-2.0.0.tar.gz 12798ec29aa8a64d8675c4378b99f5fe28447afb"

die() {
    echo "build-ipxe: error: $*" >&2
    exit 1
}
note() {
    echo "build-ipxe: $*" >&2
}

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
}

source_path=""
trust=""
out=""
embed=""
arches="x86_64"
serial_console=0
expected_sha256=""
jobs=""
while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_path=${2:?--source needs a value}; shift 2 ;;
        --trust) trust=${2:?--trust needs a value}; shift 2 ;;
        --out) out=${2:?--out needs a value}; shift 2 ;;
        --embed) embed=${2:?--embed needs a value}; shift 2 ;;
        --arch) arches=$(echo "${2:?--arch needs a value}" | tr ',' ' '); shift 2 ;;
        --serial-console) serial_console=1; shift ;;
        --sha256) expected_sha256=${2:?--sha256 needs a value}; shift 2 ;;
        --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
        -h|--help) usage ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$source_path" ] || die "--source (the iPXE release tarball or an unpacked tree) is required"
[ -n "$trust" ] || die "--trust (the site CA certificate, PEM) is required"
[ -n "$out" ] || die "--out (the directory for the boot programs) is required"
[ -n "$jobs" ] || jobs=$(nproc 2>/dev/null || echo 2)
for arch in $arches; do
    case "$arch" in
        x86_64|arm64) ;;
        *) die "unknown --arch $arch (x86_64 or arm64)" ;;
    esac
done

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing (Debian package $2)"
}
need tar tar
need sha256sum coreutils
need openssl openssl
need make make
need patch patch
need perl perl
need gcc gcc
need ld binutils
for arch in $arches; do
    [ "$arch" = arm64 ] && need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
done

work=$(mktemp -d "${TMPDIR:-/tmp}/build-ipxe.XXXXXX")
publishing=0
cleanup() {
    # A publish cut short leaves no temporary files in --out.
    if [ "$publishing" = 1 ]; then
        for file in "$work"/out/*; do
            rm -f "$out/.$(basename "$file").partial"
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The trust anchor: every certificate in --trust, one file each (TRUST= takes files). ---
[ -f "$trust" ] || die "--trust $trust does not exist"
mkdir "$work/trust"
awk -v dir="$work/trust" '
    /-----BEGIN CERTIFICATE-----/ { n++; file = sprintf("%s/ca%02d.pem", dir, n) }
    file != "" { print > file }
    /-----END CERTIFICATE-----/ { close(file); file = "" }
' "$trust"
trust_files=""
fingerprints=""
for cert in "$work"/trust/ca*.pem; do
    [ -f "$cert" ] || die "$trust holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    openssl x509 -in "$cert" -noout 2>/dev/null || die "$trust is not a certificate: openssl cannot read $(basename "$cert") of it"
    fingerprint=$(openssl x509 -in "$cert" -noout -fingerprint -sha256 | sed 's/.*=//' | tr 'A-F' 'a-f')
    subject=$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    if ! openssl x509 -in "$cert" -noout -text | grep -q 'CA:TRUE'; then
        note "warning: $subject is not a CA certificate; iPXE will trust only that exact certificate"
    fi
    if ! openssl x509 -in "$cert" -noout -checkend 2592000 >/dev/null; then
        note "warning: $subject expires within 30 days (or has expired)"
    fi
    note "trusting $subject (SHA-256 $fingerprint)"
    trust_files="${trust_files:+$trust_files,}$cert"
    fingerprints="${fingerprints:+$fingerprints, }\"$fingerprint\""
done

if [ -n "$embed" ]; then
    [ -f "$embed" ] || die "--embed $embed does not exist"
    head -c 5 "$embed" | grep -q '^#!ipxe' || die "--embed $embed is not an iPXE script (first line #!ipxe)"
    cp "$embed" "$work/embed.ipxe"
fi

# --- The source: a verified release tarball, or a tree (a checkout) copied as it is. ---
source_sha256=""
source_commit=""
if [ -d "$source_path" ]; then
    [ -f "$source_path/src/Makefile" ] || die "$source_path is not an iPXE source tree (no src/Makefile)"
    cp -R "$source_path" "$work/ipxe"
    if command -v git >/dev/null 2>&1 && git -C "$source_path" rev-parse HEAD >/dev/null 2>&1; then
        source_commit=$(git -C "$source_path" rev-parse HEAD)
    fi
    note "building from the tree $source_path (not checked against a pinned release)"
elif [ -f "$source_path" ]; then
    source_sha256=$(sha256sum "$source_path" | cut -d' ' -f1)
    pinned=$(echo "$PINNED" | awk -v h="$source_sha256" '$1 == h { print $2 " " $3 }')
    if [ -n "$pinned" ]; then
        source_commit=${pinned#* }
        note "source ${pinned% *} verified (SHA-256 $source_sha256, commit $source_commit)"
    elif [ -n "$expected_sha256" ] && [ "$expected_sha256" = "$source_sha256" ]; then
        note "source $source_path matches the given --sha256"
    else
        die "SHA-256 of $source_path is $source_sha256, which is not a pinned iPXE release ($(echo "$PINNED" | awk '{ printf "%s %s; ", $2, $1 }')and not --sha256 ${expected_sha256:-(none given)}). Check where the file came from; for a tarball you made yourself, compare \`zcat FILE | git get-tar-commit-id\` with the release's commit and pass --sha256 $source_sha256"
    fi
    mkdir "$work/ipxe"
    tar -xzf "$source_path" -C "$work/ipxe" --strip-components=1 ||
        die "$source_path is not a readable .tar.gz"
    [ -f "$work/ipxe/src/Makefile" ] || die "$source_path holds no iPXE source tree (no src/Makefile)"
else
    die "--source $source_path does not exist"
fi
src="$work/ipxe/src"

# --- Fixes on top of the release, each applied only where it fits (a tree from another
# release may already have it or differ there; the build then goes on without it). ---
apply_fix() {
    if patch -d "$work/ipxe" -p1 --dry-run --silent --force < "$work/fix.patch" >/dev/null 2>&1; then
        patch -d "$work/ipxe" -p1 --silent --force < "$work/fix.patch" >/dev/null ||
            die "applying the fix \"$1\" failed"
        fixes="${fixes:+$fixes, }\"$1\""
    else
        note "the fix \"$1\" does not apply to this source; building without it"
    fi
}
fixes=""
# iPXE 2.0 sends the host of https://[2001:db8::1]/ with its brackets as the TLS server name
# (SNI), which RFC 6066 forbids and rustls servers refuse; send the bare address.
cat > "$work/fix.patch" <<'EOF'
--- a/src/net/tcp/https.c
+++ b/src/net/tcp/https.c
@@ -31,6 +31,7 @@
  *
  */
 
+#include <string.h>
 #include <ipxe/open.h>
 #include <ipxe/uri.h>
 #include <ipxe/tls.h>
@@ -46,8 +47,24 @@
  * @ret rc		Return status code
  */
 static int https_filter ( struct http_connection *conn ) {
+	const char *host = conn->uri->host;
+	size_t len = strlen ( host );
 
-	return add_tls ( &conn->socket, conn->uri->host, NULL, NULL );
+	/* An IPv6 literal keeps its URI brackets in uri->host, which
+	 * would go out as the TLS server name: neither a host name nor
+	 * an address, and refused by some servers.  Pass the bare
+	 * address: servers ignore an address given as a server name,
+	 * and the certificate check accepts it with or without them.
+	 */
+	if ( ( len > 2 ) && ( host[0] == '[' ) &&
+	     ( host[ len - 1 ] == ']' ) ) {
+		char bare[ len - 1 ];
+
+		memcpy ( bare, ( host + 1 ), ( len - 2 ) );
+		bare[ len - 2 ] = '\0';
+		return add_tls ( &conn->socket, bare, NULL, NULL );
+	}
+	return add_tls ( &conn->socket, host, NULL, NULL );
 }
 
 /** HTTPS URI opener */
EOF
apply_fix "https-ipv6-literal-sni"

# --- Build options (src/config/local/*.h are read last and override upstream's defaults). ---
mkdir -p "$src/config/local"
cat > "$src/config/local/general.h" <<'EOF'
/* netboot site build: what the suite's boot scripts rely on, on every platform. */
#define DOWNLOAD_PROTO_HTTPS	/* scripts come over HTTPS (upstream: off for BIOS) */
#define HTTP_AUTH_BASIC		/* login before boot: iPXE answers a 401 ... */
#define HTTP_AUTH_DIGEST	/* ... with Basic, Digest ... */
#define HTTP_AUTH_NTLM		/* ... or NTLM (upstream: off for BIOS) */
#define HTTP_ENC_PEERDIST	/* BranchCache (PeerDist) content encoding */
#define PARAM_CMD		/* params/param: POST forms (upstream: off for BIOS) */
#define LOGIN_CMD		/* login form */
#define DIGEST_CMD		/* sha256sum/md5sum of images (upstream: off for BIOS) */
#define IMAGE_TRUST_CMD		/* imgtrust/imgverify: signed images */
#define CERT_CMD		/* certstat/certstore (upstream: off for BIOS) */
#define NTP_CMD			/* ntp: set the clock certificates are checked against */
#define TIME_CMD		/* time: how long a command (a download) took */
EOF
cat > "$src/config/local/crypto.h" <<'EOF'
/* netboot site build: TLS 1.2 or later with forward secrecy and AEAD ciphers only. */
#undef TLS_VERSION_MIN
#define TLS_VERSION_MIN TLS_VERSION_TLS_1_2
#undef CRYPTO_EXCHANGE_PUBKEY	/* no static-RSA key exchange */
#undef CRYPTO_CIPHER_AES_CBC	/* AES-GCM only */
/* The site CA is the only trust anchor: never fetch cross-signatures from ca.ipxe.org. */
#undef CROSSCERT
#define CROSSCERT ""
EOF
if [ "$serial_console" = 1 ]; then
    # Off by default: SeaBIOS and OVMF already copy the console to the serial port, and a
    # second copy doubles every character there.
    echo '#define CONSOLE_SERIAL' > "$src/config/local/console.h"
else
    : > "$src/config/local/console.h"
fi

# --- Build. Each architecture is one make run (the cross compiler differs). ---
mkdir "$work/out"
targets_for() {
    case "$1" in
        x86_64) echo "bin/undionly.kpxe:undionly.kpxe bin-x86_64-efi/snponly.efi:snponly.efi bin-x86_64-efi/ipxe.efi:ipxe.efi" ;;
        arm64) echo "bin-arm64-efi/snponly.efi:snponly-arm64.efi bin-arm64-efi/ipxe.efi:ipxe-arm64.efi" ;;
    esac
}
cross_for() {
    case "$1" in
        arm64) echo "aarch64-linux-gnu-" ;;
        *) echo "" ;;
    esac
}
outputs=""
for arch in $arches; do
    goals=""
    for pair in $(targets_for "$arch"); do
        goals="$goals ${pair%%:*}"
    done
    note "building$goals (make -j$jobs; a cold build takes minutes)"
    set -- -C "$src" -j"$jobs" TRUST="$trust_files" CERT="$trust_files" CROSS="$(cross_for "$arch")"
    [ -n "$embed" ] && set -- "$@" EMBED="$work/embed.ipxe"
    # shellcheck disable=SC2086 # goals are words
    if ! make "$@" $goals > "$work/make-$arch.log" 2>&1; then
        tail -n 30 "$work/make-$arch.log" >&2
        die "make for $arch failed (last lines above)"
    fi
    for pair in $(targets_for "$arch"); do
        [ -s "$src/${pair%%:*}" ] || die "make for $arch did not produce ${pair%%:*}"
        cp "$src/${pair%%:*}" "$work/out/${pair#*:}"
        outputs="${outputs:+$outputs, }\"${pair#*:}\""
    done
done

{
    echo "# The site's iPXE build (written by build-ipxe.sh)"
    echo "source = \"$(basename "$source_path")\""
    [ -n "$source_sha256" ] && echo "source_sha256 = \"$source_sha256\""
    [ -n "$source_commit" ] && echo "source_commit = \"$source_commit\""
    echo "trust_sha256 = [$fingerprints]"
    echo "arches = [$(for a in $arches; do printf '"%s", ' "$a"; done | sed 's/, $//')]"
    echo "files = [$outputs]"
    echo "embedded_script = $([ -n "$embed" ] && echo true || echo false)"
    echo "serial_console = $([ "$serial_console" = 1 ] && echo true || echo false)"
    echo "fixes = [$fixes]"
} > "$work/out/ipxe-build.toml"

# --- Publish: every file under a temporary name first, then renamed into place. ---
mkdir -p "$out" || die "cannot create $out"
publishing=1
for file in "$work"/out/*; do
    name=$(basename "$file")
    cp "$file" "$out/.$name.partial" || die "cannot write into $out"
done
for file in "$work"/out/*; do
    name=$(basename "$file")
    mv -f "$out/.$name.partial" "$out/$name"
done
publishing=0
note "wrote $(echo "$outputs" | tr -d '"') and ipxe-build.toml to $out"
