/** Tools the driver itself runs (nsenter, mount, mkfs, iptables…): a fixed PATH, never the caller's. */
export const TOOLS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
