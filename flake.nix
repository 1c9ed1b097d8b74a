{
  description = "certplane: a declarative GitOps reconciler for Vault/OpenBao PKI and cert-manager";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);
        certplane = pkgs.rustPlatform.buildRustPackage {
          pname = "certplane";
          version = cargoToml.package.version;
          src = pkgs.lib.cleanSource ./.;
          # Every crate comes from Cargo.lock: the build reaches nothing else.
          cargoLock.lockFile = ./Cargo.lock;
          nativeBuildInputs = [ pkgs.pkg-config pkgs.cmake pkgs.perl ];
          # The tests start a real OpenBao on loopback.
          nativeCheckInputs = [ pkgs.openbao pkgs.git ];
          meta = {
            description = cargoToml.package.description;
            license = pkgs.lib.licenses.asl20;
            mainProgram = "certplane";
          };
        };
        # The container image (`nix build .#image`, then `docker load < result`):
        # the same as Containerfile's, named and tagged like it from Cargo.toml
        # (ghcr.io/certplane/certplane:<version>, the image deploy/ runs).
        # certplane, git, ssh and ssh-keygen, the CA certificates; user 65532
        # (deploy/'s runAsUser, with a passwd entry: ssh and ssh-keygen look
        # it up); HOME and the Git cache in /var/cache/certplane, so the root
        # file system can be read-only.
        image = pkgs.dockerTools.buildLayeredImage {
          name = cargoToml.package.metadata.image.name;
          tag = cargoToml.package.version;
          contents = [
            certplane
            pkgs.git
            pkgs.openssh
            pkgs.cacert
            (pkgs.fakeNss.override {
              extraPasswdLines = [ "certplane:x:65532:65532:certplane:/var/cache/certplane:/sbin/nologin" ];
              extraGroupLines = [ "certplane:x:65532:" ];
            })
          ];
          fakeRootCommands = ''
            mkdir -p ./var/cache/certplane ./tmp
            chown 65532:65532 ./var/cache/certplane
            chmod 0750 ./var/cache/certplane
            chmod 1777 ./tmp
          '';
          config = {
            User = "65532:65532";
            Entrypoint = [ "${certplane}/bin/certplane" ];
            Cmd = [ "--help" ];
            WorkingDir = "/var/cache/certplane";
            Env = [
              "PATH=/bin"
              "HOME=/var/cache/certplane"
              "XDG_CACHE_HOME=/var/cache/certplane"
              "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
            ];
            Labels = {
              "org.opencontainers.image.title" = "certplane";
              "org.opencontainers.image.description" = cargoToml.package.description;
              "org.opencontainers.image.licenses" = cargoToml.package.license;
              "org.opencontainers.image.version" = cargoToml.package.version;
              "org.opencontainers.image.revision" = self.rev or "unknown";
            };
          };
        };
      in
      {
        packages = {
          default = certplane;
          certplane = certplane;
        } // pkgs.lib.optionalAttrs pkgs.stdenv.isLinux {
          # Container images are Linux images.
          inherit image;
        };
        apps.default = flake-utils.lib.mkApp { drv = certplane; };
        devShells.default = pkgs.mkShell {
          inputsFrom = [ certplane ];
          packages = [
            pkgs.cargo pkgs.rustc pkgs.rustfmt pkgs.clippy pkgs.rust-analyzer
            pkgs.openbao pkgs.kubectl pkgs.git pkgs.gnumake
          ];
        };
      });
}
