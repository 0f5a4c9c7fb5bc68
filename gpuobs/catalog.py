"""The metric catalog: every metric gpuobs reads or serves, and the labels on it.

A logical metric (``gpu_temp``) is kept apart from its name in one exporter's vocabulary
(``DCGM_FI_DEV_GPU_TEMP`` in the ``dcgm`` profile), so a second exporter's names need only a
new profile mapping, never new rules. Standard library only: the exporter imports this
module and must stay slim.

Origins:
  dcgm-default   served by NVIDIA's dcgm-exporter with its default counters CSV
  dcgm-optional  a DCGM field dcgm-exporter serves once its line is added to the counters CSV
  dcgm-exporter  produced by dcgm-exporter itself (``DCGM_EXP_*``), not by a DCGM field
  gpuobs         ours alone, prefixed ``gpuobs_``; served only by gpuobs-exporter
  rules          produced by the generated recording rules, not by an exporter

A Profile is one exporter's vocabulary and, given its configuration (dcgm-exporter's counters),
exactly which logical metrics it serves: the rules for a host read only those.
"""

from __future__ import annotations

from dataclasses import dataclass

GAUGE = "gauge"
COUNTER = "counter"
INFO = "info"

# Levels say which entity a series describes, and so which identity labels it carries.
GPU = "gpu"  # one series per physical GPU (repeated per MIG instance by dcgm-exporter)
INSTANCE = "instance"  # one series per MIG instance where MIG is on, else per GPU
EXPORTER = "exporter"  # one series per exporter process
HOST = "host"  # produced by rules, one series per host of the inventory


@dataclass(frozen=True)
class Metric:
    key: str
    type: str
    unit: str
    level: str
    origin: str
    help: str
    extra_labels: tuple[str, ...] = ()


def _m(key, type_, unit, level, origin, help_, extra=()):
    return Metric(key, type_, unit, level, origin, help_, tuple(extra))


METRICS: tuple[Metric, ...] = (
    # Clocks
    _m("sm_clock", GAUGE, "MHz", GPU, "dcgm-default", "SM clock frequency (in MHz)."),
    _m("mem_clock", GAUGE, "MHz", GPU, "dcgm-default", "Memory clock frequency (in MHz)."),
    # Temperature
    _m("memory_temp", GAUGE, "celsius", GPU, "dcgm-default", "Memory temperature (in C)."),
    _m("gpu_temp", GAUGE, "celsius", GPU, "dcgm-default", "GPU temperature (in C)."),
    _m("gpu_max_op_temp", GAUGE, "celsius", GPU, "dcgm-optional",
       "Maximum operating temperature for this GPU (in C)."),
    _m("mem_max_op_temp", GAUGE, "celsius", GPU, "dcgm-optional",
       "Maximum operating temperature for the memory of this GPU (in C)."),
    _m("gpu_temp_margin", GAUGE, "celsius", GPU, "gpuobs",
       "Degrees C the GPU is below its max operating T.Limit (negative: past it)."),
    # Power
    _m("power_usage", GAUGE, "watts", GPU, "dcgm-default", "Power draw (in W)."),
    _m("total_energy", COUNTER, "millijoules", GPU, "dcgm-default",
       "Total energy consumption since boot (in mJ)."),
    _m("power_limit", GAUGE, "watts", GPU, "dcgm-optional", "Current power management limit (in W)."),
    _m("enforced_power_limit", GAUGE, "watts", GPU, "dcgm-optional",
       "Power limit the driver enforces (in W), the lowest of all limits in force."),
    # PCIe
    _m("pcie_replay", COUNTER, "count", GPU, "dcgm-default", "Total number of PCIe retries."),
    _m("pcie_tx_bytes", GAUGE, "bytes_per_second", GPU, "dcgm-default",
       "The rate of data transmitted over the PCIe bus in bytes per second."),
    _m("pcie_rx_bytes", GAUGE, "bytes_per_second", GPU, "dcgm-default",
       "The rate of data received over the PCIe bus in bytes per second."),
    # Utilization
    _m("gpu_util", GAUGE, "percent", GPU, "dcgm-default", "GPU utilization (in %)."),
    _m("mem_copy_util", GAUGE, "percent", GPU, "dcgm-default", "Memory utilization (in %)."),
    _m("enc_util", GAUGE, "percent", GPU, "dcgm-default", "Encoder utilization (in %)."),
    _m("dec_util", GAUGE, "percent", GPU, "dcgm-default", "Decoder utilization (in %)."),
    _m("gr_engine_active", GAUGE, "ratio", INSTANCE, "dcgm-default",
       "Ratio of time the graphics engine is active."),
    _m("tensor_active", GAUGE, "ratio", INSTANCE, "dcgm-default",
       "Ratio of cycles the tensor (HMMA) pipe is active."),
    _m("dram_active", GAUGE, "ratio", INSTANCE, "dcgm-default",
       "Ratio of cycles the device memory interface is active sending or receiving data."),
    # Errors and violations
    _m("xid_last", GAUGE, "code", GPU, "dcgm-default", "Value of the last XID error encountered.",
       ("err_code", "err_msg")),
    _m("xid_errors", COUNTER, "count", GPU, "gpuobs",
       "XID events seen since the exporter started, per XID code.", ("xid",)),
    _m("xid_last_seen", GAUGE, "seconds", GPU, "gpuobs",
       "Unix time of the latest XID event, per XID code.", ("xid",)),
    _m("xid_window_count", GAUGE, "count", GPU, "dcgm-exporter",
       "XID events per XID code within dcgm-exporter's sliding window.", ("xid", "window_size_in_ms")),
    _m("clock_event_reasons", GAUGE, "bitmask", GPU, "dcgm-optional",
       "Current clock event (throttle) reasons as NVML's bitmask."),
    _m("clock_event_active", GAUGE, "bool", GPU, "gpuobs",
       "1 while the named clock event (throttle) reason is active, else 0.", ("reason",)),
    # Memory
    _m("fb_free", GAUGE, "mebibytes", INSTANCE, "dcgm-default", "Framebuffer memory free (in MiB)."),
    _m("fb_used", GAUGE, "mebibytes", INSTANCE, "dcgm-default", "Framebuffer memory used (in MiB)."),
    _m("fb_reserved", GAUGE, "mebibytes", INSTANCE, "dcgm-default",
       "Framebuffer memory reserved (in MiB)."),
    _m("fb_total", GAUGE, "mebibytes", INSTANCE, "dcgm-optional", "Framebuffer memory total (in MiB)."),
    # ECC
    _m("ecc_sbe_volatile", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of single-bit volatile ECC errors."),
    _m("ecc_dbe_volatile", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of double-bit volatile ECC errors."),
    _m("ecc_sbe_aggregate", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of single-bit persistent ECC errors."),
    _m("ecc_dbe_aggregate", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of double-bit persistent ECC errors."),
    # Retired pages (Volta) and row remapping (Ampere and later)
    _m("retired_sbe", COUNTER, "pages", GPU, "dcgm-optional",
       "Total number of retired pages due to single-bit errors."),
    _m("retired_dbe", COUNTER, "pages", GPU, "dcgm-optional",
       "Total number of retired pages due to double-bit errors."),
    _m("retired_pending", GAUGE, "bool", GPU, "dcgm-optional",
       "1 while pages are pending retirement (a reboot is needed)."),
    _m("uncorrectable_remapped_rows", COUNTER, "rows", GPU, "dcgm-default",
       "Number of remapped rows for uncorrectable errors"),
    _m("correctable_remapped_rows", COUNTER, "rows", GPU, "dcgm-default",
       "Number of remapped rows for correctable errors"),
    _m("row_remap_failure", GAUGE, "bool", GPU, "dcgm-default", "Whether remapping of rows has failed"),
    _m("row_remap_pending", GAUGE, "bool", GPU, "dcgm-optional",
       "1 while a row remap is pending (a GPU reset is needed)."),
    # The driver's own verdict after an uncorrectable error (newer drivers; DCGM from 4.5): NVML field 230.
    _m("recovery_action", GAUGE, "code", GPU, "dcgm-optional",
       "Recovery action the driver asks for: 0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, "
       "4 drain and reset, 5 recover the IMEX domain, 6 PCIe bus reset, 7 system reboot."),
    # NVLink
    # dcgm-exporter's CSV types it counter, but DCGM fills it with a rate (MB/s): never rate() it.
    _m("nvlink_bandwidth", COUNTER, "count", GPU, "dcgm-default",
       "Total number of NVLink bandwidth counters for all lanes."),
    _m("nvlink_crc_flit_errors", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of NVLink flow-control CRC errors."),
    _m("nvlink_crc_data_errors", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of NVLink data CRC errors."),
    _m("nvlink_replay_errors", COUNTER, "count", GPU, "dcgm-optional", "Total number of NVLink retries."),
    _m("nvlink_recovery_errors", COUNTER, "count", GPU, "dcgm-optional",
       "Total number of NVLink recovery errors."),
    # Misc
    _m("vgpu_license_status", GAUGE, "bool", GPU, "dcgm-default", "vGPU License status"),
    _m("pstate", GAUGE, "pstate", GPU, "dcgm-optional", "Performance state, 0 (highest) to 15."),
    _m("fan_speed", GAUGE, "percent", GPU, "dcgm-optional", "Intended fan speed (in % of max)."),
    # Per process: gpuobs-exporter with --process-metrics, at most its cap of processes per GPU or MIG instance
    _m("process_memory_used", GAUGE, "bytes", INSTANCE, "gpuobs",
       'GPU memory a process holds (in bytes); pid="other" sums the processes past the cap.',
       ("pid", "process_name")),
    _m("process_sm_util", GAUGE, "ratio", INSTANCE, "gpuobs",
       'Ratio of time a process ran kernels in NVML\'s latest sample; pid="other" sums the processes past the cap.',
       ("pid", "process_name")),
    _m("process_folded", COUNTER, "count", INSTANCE, "gpuobs",
       'Processes summed into pid="other" for want of a series of their own, each counted as it is folded.'),
    # Identity, presence and the exporter itself
    _m("gpu_info", INFO, "", GPU, "gpuobs",
       "Descriptive labels of a GPU; always 1.", ("driver_version", "serial", "vbios_version")),
    _m("gpu_up", GAUGE, "bool", GPU, "gpuobs",
       "1 while NVML can read the GPU, 0 once it is lost (fell off the bus)."),
    _m("exporter_collection_duration", GAUGE, "seconds", EXPORTER, "gpuobs",
       "Wall time of the latest collection cycle."),
    _m("exporter_last_success", GAUGE, "seconds", EXPORTER, "gpuobs",
       "Unix time of the latest collection cycle that read at least one GPU."),
    _m("exporter_collection_errors", COUNTER, "count", EXPORTER, "gpuobs",
       "Reads NVML refused, per GPU and field.", ("gpu", "field")),
    _m("exporter_build_info", INFO, "", EXPORTER, "gpuobs",
       "Version of the exporter serving these metrics; always 1.", ("version", "source")),
    # Produced by the generated rules from the spec's inventory
    _m("inventory_expected_gpus", GAUGE, "count", HOST, "rules",
       "GPUs the spec's inventory puts on a host.", ("gpu_model",)),
)

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

# How gpuobs-exporter and dcgm-exporter spell each logical metric (they share DCGM's names).
DCGM_NAMES: dict[str, str] = {
    "sm_clock": "DCGM_FI_DEV_SM_CLOCK",
    "mem_clock": "DCGM_FI_DEV_MEM_CLOCK",
    "memory_temp": "DCGM_FI_DEV_MEMORY_TEMP",
    "gpu_temp": "DCGM_FI_DEV_GPU_TEMP",
    "gpu_max_op_temp": "DCGM_FI_DEV_GPU_MAX_OP_TEMP",
    "mem_max_op_temp": "DCGM_FI_DEV_MEM_MAX_OP_TEMP",
    "gpu_temp_margin": "gpuobs_gpu_temperature_margin_celsius",
    "power_usage": "DCGM_FI_DEV_POWER_USAGE",
    "total_energy": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "power_limit": "DCGM_FI_DEV_POWER_MGMT_LIMIT",
    "enforced_power_limit": "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
    "pcie_replay": "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "pcie_tx_bytes": "DCGM_FI_PROF_PCIE_TX_BYTES",
    "pcie_rx_bytes": "DCGM_FI_PROF_PCIE_RX_BYTES",
    "gpu_util": "DCGM_FI_DEV_GPU_UTIL",
    "mem_copy_util": "DCGM_FI_DEV_MEM_COPY_UTIL",
    "enc_util": "DCGM_FI_DEV_ENC_UTIL",
    "dec_util": "DCGM_FI_DEV_DEC_UTIL",
    "gr_engine_active": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "tensor_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "dram_active": "DCGM_FI_PROF_DRAM_ACTIVE",
    "xid_last": "DCGM_FI_DEV_XID_ERRORS",
    "xid_errors": "gpuobs_xid_errors_total",
    "xid_last_seen": "gpuobs_xid_last_seen_timestamp_seconds",
    "xid_window_count": "DCGM_EXP_XID_ERRORS_COUNT",
    "clock_event_reasons": "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    "clock_event_active": "gpuobs_clock_event_reason_active",
    "fb_free": "DCGM_FI_DEV_FB_FREE",
    "fb_used": "DCGM_FI_DEV_FB_USED",
    "fb_reserved": "DCGM_FI_DEV_FB_RESERVED",
    "fb_total": "DCGM_FI_DEV_FB_TOTAL",
    "ecc_sbe_volatile": "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
    "ecc_dbe_volatile": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "ecc_sbe_aggregate": "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
    "ecc_dbe_aggregate": "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
    "retired_sbe": "DCGM_FI_DEV_RETIRED_SBE",
    "retired_dbe": "DCGM_FI_DEV_RETIRED_DBE",
    "retired_pending": "DCGM_FI_DEV_RETIRED_PENDING",
    "uncorrectable_remapped_rows": "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "correctable_remapped_rows": "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "row_remap_failure": "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "row_remap_pending": "DCGM_FI_DEV_ROW_REMAP_PENDING",
    "recovery_action": "DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION",
    "nvlink_bandwidth": "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "nvlink_crc_flit_errors": "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    "nvlink_crc_data_errors": "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
    "nvlink_replay_errors": "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
    "nvlink_recovery_errors": "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
    "vgpu_license_status": "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "pstate": "DCGM_FI_DEV_PSTATE",
    "fan_speed": "DCGM_FI_DEV_FAN_SPEED",
    "process_memory_used": "gpuobs_process_memory_used_bytes",
    "process_sm_util": "gpuobs_process_sm_utilization_ratio",
    "process_folded": "gpuobs_process_folded_total",
    "gpu_info": "gpuobs_gpu_info",
    "gpu_up": "gpuobs_gpu_up",
    "exporter_collection_duration": "gpuobs_exporter_collection_duration_seconds",
    "exporter_last_success": "gpuobs_exporter_last_success_timestamp_seconds",
    "exporter_collection_errors": "gpuobs_exporter_collection_errors_total",
    "exporter_build_info": "gpuobs_exporter_build_info",
    "inventory_expected_gpus": "gpuobs_inventory_expected_gpus",
}

# Logical label -> label name. dcgm-exporter's label set, in its template order.
DCGM_LABELS: dict[str, str] = {
    "gpu": "gpu",
    "uuid": "UUID",
    "pci_bus_id": "pci_bus_id",
    "device": "device",
    "model_name": "modelName",
    "mig_profile": "GPU_I_PROFILE",
    "mig_instance": "GPU_I_ID",
    "hostname": "hostname",
    # dcgm-exporter puts the driver version on every series as this label; gpuobs serves it only
    # on gpuobs_gpu_info, as `driver_version` (extra_labels are literal label names).
    "driver_version": "DCGM_FI_DRIVER_VERSION",
}

# Identity labels on every GPU series: small on purpose (Mimir's 30-label limit bites
# dcgm-exporter users); descriptive labels live on the gpu_info metric instead.
GPU_IDENTITY = ("gpu", "uuid", "pci_bus_id", "device", "model_name", "hostname")
MIG_IDENTITY = ("mig_profile", "mig_instance")

# NVML clock event reason bits (nvmlClocksEventReason*), label value -> bit.
CLOCK_EVENT_BITS: dict[str, int] = {
    "gpu_idle": 0x001,
    "clocks_setting": 0x002,
    "power_cap": 0x004,
    "hw_slowdown": 0x008,
    "sync_boost": 0x010,
    "sw_thermal": 0x020,
    "hw_thermal": 0x040,
    "hw_power_brake": 0x080,
    "display_clocks": 0x100,
}
# Reasons that mean the hardware cut clocks by half or more: what the throttling alert is about.
HW_THROTTLE_REASONS = ("hw_slowdown", "hw_thermal", "hw_power_brake")


# Labels that split one GPU's series by the workload on it: dcgm-exporter's Kubernetes pod
# mapping (and the exported_* names Prometheus gives them when the scrape's own pod labels win),
# its HPC job mapping. GPU-level rules drop them with the MIG labels: one series per physical GPU.
WORKLOAD_LABELS = ("pod", "namespace", "container", "exported_pod", "exported_namespace", "exported_container",
                   "hpc_job")

GPUOBS = "gpuobs"
DCGM_EXPORTER = "dcgm-exporter"
NVIDIA_GPU_EXPORTER = "nvidia_gpu_exporter"
KINDS = (GPUOBS, DCGM_EXPORTER, NVIDIA_GPU_EXPORTER)


@dataclass(frozen=True)
class Profile:
    """One exporter's vocabulary, and the logical metrics it serves as configured."""

    name: str  # one of KINDS
    metrics: dict[str, str]  # logical key -> series name, for everything the exporter can serve
    labels: dict[str, str]  # logical identity label -> label name
    served: frozenset[str]
    # Divide a series by this to get the catalog's unit (nvidia_gpu_exporter serves bytes, not MiB).
    scale: dict[str, float]

    def metric(self, key: str) -> str:
        return self.metrics[key]

    def label(self, key: str) -> str:
        return self.labels[key]

    def serves(self, key: str) -> bool:
        return key in self.served

    def could_serve(self, key: str) -> bool:
        """Whether this kind of exporter serves `key` in some configuration (dcgm-exporter: any
        DCGM field its counters may enable)."""
        return key in self.served or (self.name == DCGM_EXPORTER and key in set(DCGM_FIELD_KEYS.values()))

    def has_label(self, key: str) -> bool:
        return key in self.labels


# gpuobs-exporter serves every DCGM-named metric in the catalog plus its own.
GPUOBS_PROFILE = Profile(
    GPUOBS, DCGM_NAMES, DCGM_LABELS,
    frozenset(m.key for m in METRICS if m.origin in ("dcgm-default", "dcgm-optional", "gpuobs")),
    {})

# DCGM's own field for the T.Limit margin (id 153; 4.6 renames it DCGM_FI_DEV_GPU_TEMP_MARGIN_CELSIUS):
# gpuobs-exporter serves the same reading under its own name.
DCGM_MARGIN_FIELD = "DCGM_FI_DEV_GPU_TEMP_LIMIT"


def _dcgm_field_keys() -> dict[str, str]:
    """DCGM field name -> logical key for every field gpuobs understands, under every name a
    counters CSV may give it: the names gpuobs writes, the older clock-throttle name and the names
    DCGM 4.6 introduced."""
    from gpuobs.dcgm_fields import DCGM_RENAMED

    keys = {name: key for key, name in DCGM_NAMES.items() if name.startswith(("DCGM_FI_", "DCGM_EXP_"))}
    keys[DCGM_MARGIN_FIELD] = "gpu_temp_margin"
    keys["DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"] = "clock_event_reasons"  # OLD_CLOCK_EVENTS_FIELD
    keys.update({new: keys[old] for old, new in DCGM_RENAMED.items() if old in keys})
    return keys


DCGM_FIELD_KEYS: dict[str, str] = _dcgm_field_keys()
# Metrics whose series appear only once an event happened: their absence says nothing.
EVENT_METRICS = frozenset({"xid_last", "xid_errors", "xid_window_count", "xid_last_seen"})

# dcgm-exporter's default counters CSV (etc/default-counters.csv; 3.x and 4.x enable the same
# fields gpuobs reads), as logical keys.
DCGM_DEFAULT_COUNTERS: tuple[str, ...] = (
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
)
# The driver version, which dcgm-exporter's default CSV turns into a label on every series.
DCGM_DRIVER_LABEL_FIELD = "DCGM_FI_DRIVER_VERSION"


def dcgm_exporter_profile(counters: tuple[str, ...], hostname_label: str = "hostname") -> Profile:
    """dcgm-exporter serving the fields of `counters` (DCGM field names, as in its CSV).

    3.x names the node label `Hostname`, 4.x `hostname`. A field listed under an older name is
    served under that name, so the rules read it by the name the CSV gives.
    """
    metrics = {**DCGM_NAMES, "gpu_temp_margin": DCGM_MARGIN_FIELD}
    served = set()
    for field in counters:
        key = DCGM_FIELD_KEYS.get(field)
        if key is not None:
            metrics[key] = field
            served.add(key)
    labels = {**DCGM_LABELS, "hostname": hostname_label}
    return Profile(DCGM_EXPORTER, metrics, labels, frozenset(served), {})


# nvidia_gpu_exporter (utkuozdemir): nvidia-smi --query-gpu fields as nvidia_smi_<field>, with
# dots turned into underscores; values in base units (bytes, Hz, ratios) and `uuid` as the only
# label on every series. Its model name is a label of nvidia_smi_gpu_info alone.
NVIDIA_SMI_NAMES: dict[str, str] = {
    "sm_clock": "nvidia_smi_clocks_current_sm_clock_hz",
    "mem_clock": "nvidia_smi_clocks_current_memory_clock_hz",
    "memory_temp": "nvidia_smi_temperature_memory",
    "gpu_temp": "nvidia_smi_temperature_gpu",
    "gpu_temp_margin": "nvidia_smi_temperature_gpu_tlimit",
    "power_usage": "nvidia_smi_power_draw_watts",
    "enforced_power_limit": "nvidia_smi_enforced_power_limit_watts",
    "power_limit": "nvidia_smi_power_limit_watts",
    "gpu_util": "nvidia_smi_utilization_gpu_ratio",
    "mem_copy_util": "nvidia_smi_utilization_memory_ratio",
    "fb_free": "nvidia_smi_memory_free_bytes",
    "fb_used": "nvidia_smi_memory_used_bytes",
    "fb_reserved": "nvidia_smi_memory_reserved_bytes",
    "fb_total": "nvidia_smi_memory_total_bytes",
    "ecc_sbe_volatile": "nvidia_smi_ecc_errors_corrected_volatile_total",
    "ecc_dbe_volatile": "nvidia_smi_ecc_errors_uncorrected_volatile_total",
    "ecc_sbe_aggregate": "nvidia_smi_ecc_errors_corrected_aggregate_total",
    "ecc_dbe_aggregate": "nvidia_smi_ecc_errors_uncorrected_aggregate_total",
    "retired_sbe": "nvidia_smi_retired_pages_single_bit_ecc_count",
    "retired_dbe": "nvidia_smi_retired_pages_double_bit_count",
    "retired_pending": "nvidia_smi_retired_pages_pending",
    "uncorrectable_remapped_rows": "nvidia_smi_remapped_rows_uncorrectable",
    "correctable_remapped_rows": "nvidia_smi_remapped_rows_correctable",
    "row_remap_failure": "nvidia_smi_remapped_rows_failure",
    "row_remap_pending": "nvidia_smi_remapped_rows_pending",
    # One 0/1 series per reason here, not one series with a reason label: rules read them by name
    # (NVIDIA_SMI_HW_THROTTLE); drivers before 590 say "throttle" where newer ones say "event".
    "clock_event_active": "nvidia_smi_clocks_event_reasons_hw_slowdown",
    "pstate": "nvidia_smi_pstate",
    "fan_speed": "nvidia_smi_fan_speed_ratio",
    "gpu_info": "nvidia_smi_gpu_info",
}
NVIDIA_SMI_LABELS: dict[str, str] = {"uuid": "uuid"}
NVIDIA_SMI_HW_THROTTLE = ("nvidia_smi_clocks_(event|throttle)_reasons_"
                          "(hw_slowdown|hw_thermal_slowdown|hw_power_brake_slowdown)")
# Per-series divisor to the catalog's unit: MiB, MHz, percent.
NVIDIA_SMI_SCALE: dict[str, float] = {
    "fb_free": 1048576, "fb_used": 1048576, "fb_reserved": 1048576, "fb_total": 1048576,
    "sm_clock": 1e6, "mem_clock": 1e6, "gpu_util": 0.01, "mem_copy_util": 0.01, "fan_speed": 0.01,
}
NVIDIA_SMI_PROFILE = Profile(NVIDIA_GPU_EXPORTER, {**DCGM_NAMES, **NVIDIA_SMI_NAMES}, NVIDIA_SMI_LABELS,
                             frozenset(NVIDIA_SMI_NAMES), NVIDIA_SMI_SCALE)

# Fields gpuobs reads beyond the alerts' signals, wherever served: the GPU's own limits (better
# than any per-model figure) and what the dashboards show.
_GPUOBS_EXTRA_KEYS = ("gpu_temp_margin", "gpu_max_op_temp", "mem_max_op_temp", "enforced_power_limit", "fb_total",
                      "clock_event_reasons", "xid_window_count")


# dcgm-exporter 3.x knows the clock-events field only by its old name (and exits on the new one);
# 4.x releases know the new one (some 4.x releases refuse the old).
OLD_CLOCK_EVENTS_FIELD = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
# Fields DCGM 4.5 added: dcgm-exporter built on an older DCGM exits at start when its counters CSV
# names one, so the CSV gpuobs generates leaves them out; a spec's own `counters:` list may name them.
DCGM_45_KEYS = frozenset({"recovery_action"})


def gpuobs_dcgm_counters(enabled_alerts, version: int = 4) -> tuple[str, ...]:
    """dcgm-exporter's default counters plus every DCGM field the enabled alerts and the
    dashboards read, in names the given dcgm-exporter major version accepts."""
    fields = list(DCGM_DEFAULT_COUNTERS)
    keys = [key for alert in enabled_alerts for signal in alert.needs for key in signal] + list(_GPUOBS_EXTRA_KEYS)
    names = {**DCGM_NAMES, "gpu_temp_margin": DCGM_MARGIN_FIELD}
    if version == 3:
        names["clock_event_reasons"] = OLD_CLOCK_EVENTS_FIELD
    for key in keys:
        name = names[key]
        if name.startswith(("DCGM_FI_", "DCGM_EXP_")) and name not in fields and key not in DCGM_45_KEYS:
            fields.append(name)
    return tuple(fields)


def dcgm_counters(counters, version: int, enabled_alerts) -> tuple[str, tuple[str, ...]]:
    """(name, fields) of dcgm-exporter's counters CSV as a spec gives it: default (as shipped),
    gpuobs (gpuobs_dcgm_counters; what a spec that says nothing gets) or a list of fields (custom)."""
    if counters == "default":
        return counters, DCGM_DEFAULT_COUNTERS
    if counters in (None, "gpuobs"):
        return "gpuobs", gpuobs_dcgm_counters(enabled_alerts, version)
    return "custom", tuple(counters)


def exporter_profile(kind: str, version: int | None, fields: tuple[str, ...]) -> Profile:
    """What an exporter of this kind serves; for dcgm-exporter, the `fields` of its counters CSV."""
    if kind == DCGM_EXPORTER:
        return dcgm_exporter_profile(fields, "Hostname" if version == 3 else "hostname")
    return GPUOBS_PROFILE if kind == GPUOBS else NVIDIA_SMI_PROFILE


DEFAULT_PORTS = {GPUOBS: 9400, DCGM_EXPORTER: 9400, NVIDIA_GPU_EXPORTER: 9835}


def _check_consistency() -> None:
    missing = set(BY_KEY) ^ set(DCGM_NAMES)
    if missing:  # pragma: no cover - guards edits to this file
        raise AssertionError(f"catalog and DCGM names disagree on: {sorted(missing)}")


_check_consistency()
