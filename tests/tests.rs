//! Integration tests, built as one binary (`autotests = false`).

mod audit_e2e;
mod breach_rule;
mod campaign_e2e;
mod campaign_scan;
mod daemon_e2e;
mod deb_package;
mod detection_e2e;
mod e2e;
mod fail2ban_e2e;
mod fault_storms;
mod faults_e2e;
mod fleet_e2e;
mod geoip_e2e;
mod investigate_e2e;
mod metrics_e2e;
mod networks_e2e;
mod system_e2e;
mod systemd_e2e;
mod top_e2e;
mod trust_e2e;
mod vm_e2e;
mod web_e2e;
