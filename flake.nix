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
      in
      {
        packages.default = certplane;
        packages.certplane = certplane;
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
