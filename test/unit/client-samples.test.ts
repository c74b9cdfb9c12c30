// Fixture data, not tests: dumps captured from a real kernel on Debian 12 (iproute2 6.1.0,
// nftables 1.0.6, kernel 6.x) in a throwaway network namespace, by the commands named on each
// constant. The namespace had veth eth0 (02:00:00:00:00:01, 10.1.0.1/24, 2001:db8:1::1/64) and
// eth1 (02:00:00:00:01:01, 10.10.0.1/24), and the routes, neighbours and rulesets below.
// Named *.test.ts so that it sits with the client tests; it only runs a check of itself when
// run directly, so importing it adds no tests to other files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';

/** `ip -json link show` */
export const LINKS: unknown = [
  {
    "ifindex": 1,
    "ifname": "lo",
    "flags": [
      "LOOPBACK",
      "UP",
      "LOWER_UP"
    ],
    "mtu": 65536,
    "qdisc": "noqueue",
    "operstate": "UNKNOWN",
    "linkmode": "DEFAULT",
    "group": "default",
    "txqlen": 1000,
    "link_type": "loopback",
    "address": "00:00:00:00:00:00",
    "broadcast": "00:00:00:00:00:00"
  },
  {
    "ifindex": 2,
    "link": "eth0",
    "ifname": "eth0p",
    "flags": [
      "BROADCAST",
      "MULTICAST",
      "UP",
      "LOWER_UP"
    ],
    "mtu": 1500,
    "qdisc": "noqueue",
    "operstate": "UP",
    "linkmode": "DEFAULT",
    "group": "default",
    "txqlen": 1000,
    "link_type": "ether",
    "address": "9e:6e:cb:72:60:8e",
    "broadcast": "ff:ff:ff:ff:ff:ff"
  },
  {
    "ifindex": 3,
    "link": "eth0p",
    "ifname": "eth0",
    "flags": [
      "BROADCAST",
      "MULTICAST",
      "UP",
      "LOWER_UP"
    ],
    "mtu": 1500,
    "qdisc": "noqueue",
    "operstate": "UP",
    "linkmode": "DEFAULT",
    "group": "default",
    "txqlen": 1000,
    "link_type": "ether",
    "address": "02:00:00:00:00:01",
    "broadcast": "ff:ff:ff:ff:ff:ff"
  },
  {
    "ifindex": 4,
    "link": "eth1",
    "ifname": "eth1p",
    "flags": [
      "BROADCAST",
      "MULTICAST",
      "UP",
      "LOWER_UP"
    ],
    "mtu": 1500,
    "qdisc": "noqueue",
    "operstate": "UP",
    "linkmode": "DEFAULT",
    "group": "default",
    "txqlen": 1000,
    "link_type": "ether",
    "address": "4a:27:21:dc:d8:cd",
    "broadcast": "ff:ff:ff:ff:ff:ff"
  },
  {
    "ifindex": 5,
    "link": "eth1p",
    "ifname": "eth1",
    "flags": [
      "BROADCAST",
      "MULTICAST",
      "UP",
      "LOWER_UP"
    ],
    "mtu": 1500,
    "qdisc": "noqueue",
    "operstate": "UP",
    "linkmode": "DEFAULT",
    "group": "default",
    "txqlen": 1000,
    "link_type": "ether",
    "address": "02:00:00:00:01:01",
    "broadcast": "ff:ff:ff:ff:ff:ff"
  }
];

/** `ip -json -4 route show table all (after: ip route add 10.9.0.0/16 via 10.1.0.2; blackhole/unreachable/prohibit; 10.8.0.0/16 dev eth0; 10.20.0.0/16 via 10.10.0.2 metric 20 and via 10.1.0.2 metric 30; 10.21.0.0/16 multipath; 10.22.0.0/16 proto 12 (bird); 10.23.0.1 onlink; default via 10.1.0.254; 172.16.0.0/12 table 100)` */
export const ROUTES4: unknown = [
  {
    "dst": "172.16.0.0/12",
    "gateway": "10.1.0.2",
    "dev": "eth0",
    "table": "100",
    "flags": []
  },
  {
    "dst": "default",
    "gateway": "10.1.0.254",
    "dev": "eth0",
    "flags": []
  },
  {
    "dst": "10.1.0.0/24",
    "dev": "eth0",
    "protocol": "kernel",
    "scope": "link",
    "prefsrc": "10.1.0.1",
    "flags": []
  },
  {
    "dst": "10.8.0.0/16",
    "dev": "eth0",
    "scope": "link",
    "flags": []
  },
  {
    "dst": "10.9.0.0/16",
    "gateway": "10.1.0.2",
    "dev": "eth0",
    "flags": []
  },
  {
    "dst": "10.10.0.0/24",
    "dev": "eth1",
    "protocol": "kernel",
    "scope": "link",
    "prefsrc": "10.10.0.1",
    "flags": []
  },
  {
    "dst": "10.20.0.0/16",
    "gateway": "10.10.0.2",
    "dev": "eth1",
    "metric": 20,
    "flags": []
  },
  {
    "dst": "10.20.0.0/16",
    "gateway": "10.1.0.2",
    "dev": "eth0",
    "metric": 30,
    "flags": []
  },
  {
    "dst": "10.21.0.0/16",
    "protocol": "static",
    "flags": [],
    "nexthops": [
      {
        "gateway": "10.1.0.2",
        "dev": "eth0",
        "weight": 1,
        "flags": []
      },
      {
        "gateway": "10.10.0.2",
        "dev": "eth1",
        "weight": 1,
        "flags": []
      }
    ]
  },
  {
    "dst": "10.22.0.0/16",
    "gateway": "10.10.0.2",
    "dev": "eth1",
    "protocol": "bird",
    "flags": []
  },
  {
    "dst": "10.23.0.1",
    "gateway": "10.1.0.2",
    "dev": "eth0",
    "flags": [
      "onlink"
    ]
  },
  {
    "type": "blackhole",
    "dst": "10.66.0.0/16",
    "flags": []
  },
  {
    "type": "unreachable",
    "dst": "10.67.0.0/16",
    "flags": []
  },
  {
    "type": "prohibit",
    "dst": "10.68.0.0/16",
    "flags": []
  },
  {
    "type": "local",
    "dst": "10.1.0.1",
    "dev": "eth0",
    "table": "local",
    "protocol": "kernel",
    "scope": "host",
    "prefsrc": "10.1.0.1",
    "flags": []
  },
  {
    "type": "broadcast",
    "dst": "10.1.0.255",
    "dev": "eth0",
    "table": "local",
    "protocol": "kernel",
    "scope": "link",
    "prefsrc": "10.1.0.1",
    "flags": []
  },
  {
    "type": "local",
    "dst": "10.10.0.1",
    "dev": "eth1",
    "table": "local",
    "protocol": "kernel",
    "scope": "host",
    "prefsrc": "10.10.0.1",
    "flags": []
  },
  {
    "type": "broadcast",
    "dst": "10.10.0.255",
    "dev": "eth1",
    "table": "local",
    "protocol": "kernel",
    "scope": "link",
    "prefsrc": "10.10.0.1",
    "flags": []
  },
  {
    "type": "local",
    "dst": "127.0.0.0/8",
    "dev": "lo",
    "table": "local",
    "protocol": "kernel",
    "scope": "host",
    "prefsrc": "127.0.0.1",
    "flags": []
  },
  {
    "type": "local",
    "dst": "127.0.0.1",
    "dev": "lo",
    "table": "local",
    "protocol": "kernel",
    "scope": "host",
    "prefsrc": "127.0.0.1",
    "flags": []
  },
  {
    "type": "broadcast",
    "dst": "127.255.255.255",
    "dev": "lo",
    "table": "local",
    "protocol": "kernel",
    "scope": "link",
    "prefsrc": "127.0.0.1",
    "flags": []
  }
];

/** `ip -json -6 route show table all (after: 2001:db8:9::/48 via 2001:db8:1::2; blackhole 2001:db8:66::/48; 2001:db8:7::/48 via fe80::2 dev eth0)` */
export const ROUTES6: unknown = [
  {
    "dst": "2001:db8:1::/64",
    "dev": "eth0",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "dst": "2001:db8:7::/48",
    "gateway": "fe80::2",
    "dev": "eth0",
    "metric": 1024,
    "flags": [],
    "pref": "medium"
  },
  {
    "dst": "2001:db8:9::/48",
    "gateway": "2001:db8:1::2",
    "dev": "eth0",
    "metric": 1024,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "blackhole",
    "dst": "2001:db8:66::/48",
    "dev": "lo",
    "metric": 1024,
    "flags": [],
    "pref": "medium"
  },
  {
    "dst": "fe80::/64",
    "dev": "eth0p",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "dst": "fe80::/64",
    "dev": "eth0",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "dst": "fe80::/64",
    "dev": "eth1p",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "dst": "fe80::/64",
    "dev": "eth1",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "local",
    "dst": "::1",
    "dev": "lo",
    "table": "local",
    "protocol": "kernel",
    "metric": 0,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "local",
    "dst": "2001:db8:1::1",
    "dev": "eth0",
    "table": "local",
    "protocol": "kernel",
    "metric": 0,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "local",
    "dst": "fe80::9c6e:cbff:fe72:608e",
    "dev": "eth0p",
    "table": "local",
    "protocol": "kernel",
    "metric": 0,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "multicast",
    "dst": "ff00::/8",
    "dev": "eth0p",
    "table": "local",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "multicast",
    "dst": "ff00::/8",
    "dev": "eth0",
    "table": "local",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "multicast",
    "dst": "ff00::/8",
    "dev": "eth1p",
    "table": "local",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  },
  {
    "type": "multicast",
    "dst": "ff00::/8",
    "dev": "eth1",
    "table": "local",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "pref": "medium"
  }
];

/** `ip -json neigh show (permanent, reachable, incomplete and failed entries)` */
export const NEIGHBOURS: unknown = [
  {
    "dst": "10.10.0.2",
    "dev": "eth1",
    "lladdr": "02:00:00:00:01:02",
    "state": [
      "REACHABLE"
    ]
  },
  {
    "dst": "10.1.0.77",
    "dev": "eth0",
    "state": [
      "INCOMPLETE"
    ]
  },
  {
    "dst": "10.10.0.3",
    "dev": "eth1",
    "state": [
      "FAILED"
    ]
  },
  {
    "dst": "10.1.0.254",
    "dev": "eth0",
    "state": [
      "INCOMPLETE"
    ]
  },
  {
    "dst": "10.1.0.2",
    "dev": "eth0",
    "lladdr": "02:00:00:00:00:02",
    "state": [
      "PERMANENT"
    ]
  },
  {
    "dst": "2001:db8:1::2",
    "dev": "eth0",
    "lladdr": "02:00:00:00:00:03",
    "state": [
      "PERMANENT"
    ]
  }
];

/** `nft -j list ruleset (inet filter forward, policy accept, mixed supported and unsupported rules)` */
export const NFT_SIMPLE: unknown = {
  "nftables": [
    {
      "metainfo": {
        "version": "1.0.6",
        "release_name": "Lester Gooch #5",
        "json_schema_version": 1
      }
    },
    {
      "table": {
        "family": "inet",
        "name": "filter",
        "handle": 1
      }
    },
    {
      "chain": {
        "family": "inet",
        "table": "filter",
        "name": "forward",
        "handle": 1,
        "type": "filter",
        "hook": "forward",
        "prio": 0,
        "policy": "accept"
      }
    },
    {
      "chain": {
        "family": "inet",
        "table": "filter",
        "name": "input",
        "handle": 2,
        "type": "filter",
        "hook": "input",
        "prio": 0,
        "policy": "accept"
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 3,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.1.0.0",
                  "len": 24
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.9.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "sport"
                }
              },
              "right": {
                "range": [
                  1024,
                  65535
                ]
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 80
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 4,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.1.0.0",
                  "len": 24
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.9.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "udp",
                  "field": "dport"
                }
              },
              "right": 53
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 5,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip6",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "2001:db8:1::",
                  "len": 64
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 22
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 6,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": "10.66.0.5"
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 7,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 443
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 8,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 8080
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 9,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "protocol"
                }
              },
              "right": "icmp"
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 10,
        "expr": [
          {
            "match": {
              "op": "in",
              "left": {
                "ct": {
                  "key": "state"
                }
              },
              "right": "established"
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 11,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "meta": {
                  "key": "iifname"
                }
              },
              "right": "eth0"
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 12,
        "expr": [
          {
            "counter": {
              "packets": 0,
              "bytes": 0
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 14,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "set": [
                  "10.0.0.1",
                  "10.0.0.2"
                ]
              }
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 15,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.7.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "log": null
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "input",
        "handle": 16,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 22
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "table": {
        "family": "ip",
        "name": "filter",
        "handle": 2
      }
    },
    {
      "chain": {
        "family": "ip",
        "table": "filter",
        "name": "FORWARD",
        "handle": 1,
        "type": "filter",
        "hook": "forward",
        "prio": 0,
        "policy": "drop"
      }
    },
    {
      "rule": {
        "family": "ip",
        "table": "filter",
        "chain": "FORWARD",
        "handle": 2,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "192.168.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": "10.9.0.1"
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "udp",
                  "field": "sport"
                }
              },
              "right": {
                "range": [
                  5000,
                  5010
                ]
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "udp",
                  "field": "dport"
                }
              },
              "right": {
                "range": [
                  6000,
                  6010
                ]
              }
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "table": {
        "family": "ip",
        "name": "nat",
        "handle": 3
      }
    },
    {
      "chain": {
        "family": "ip",
        "table": "nat",
        "name": "post",
        "handle": 1,
        "type": "nat",
        "hook": "postrouting",
        "prio": 100,
        "policy": "accept"
      }
    }
  ]
};

/** `nft -j list ruleset (inet filter forward policy drop + jump, ip6 filter6 forward, ip mangle prerouting, bridge forward)` */
export const NFT_SUBSET: unknown = {
  "nftables": [
    {
      "metainfo": {
        "version": "1.0.6",
        "release_name": "Lester Gooch #5",
        "json_schema_version": 1
      }
    },
    {
      "table": {
        "family": "inet",
        "name": "filter",
        "handle": 1
      }
    },
    {
      "chain": {
        "family": "inet",
        "table": "filter",
        "name": "forward",
        "handle": 1,
        "type": "filter",
        "hook": "forward",
        "prio": 0,
        "policy": "drop"
      }
    },
    {
      "chain": {
        "family": "inet",
        "table": "filter",
        "name": "other",
        "handle": 2
      }
    },
    {
      "chain": {
        "family": "inet",
        "table": "filter",
        "name": "input",
        "handle": 3,
        "type": "filter",
        "hook": "input",
        "prio": 0,
        "policy": "accept"
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 4,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.1.0.0",
                  "len": 24
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.9.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "sport"
                }
              },
              "right": {
                "range": [
                  1024,
                  65535
                ]
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 80
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 5,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.1.0.0",
                  "len": 24
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "udp",
                  "field": "dport"
                }
              },
              "right": 53
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 6,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip6",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "2001:db8:1::",
                  "len": 64
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip6",
                  "field": "daddr"
                }
              },
              "right": "2001:db8:9::1"
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 22
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 7,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": "10.66.0.5"
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 8,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "meta": {
                  "key": "l4proto"
                }
              },
              "right": "tcp"
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 9,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "protocol"
                }
              },
              "right": "udp"
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 10,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": {
                "range": [
                  8000,
                  8080
                ]
              }
            }
          },
          {
            "counter": {
              "packets": 0,
              "bytes": 0
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 11,
        "expr": [
          {
            "match": {
              "op": "!=",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 80
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 13,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "udp",
                  "field": "dport"
                }
              },
              "right": {
                "set": [
                  53,
                  5353
                ]
              }
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 14,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "th",
                  "field": "dport"
                }
              },
              "right": 99
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 15,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "range": [
                  "10.0.0.1",
                  "10.0.0.5"
                ]
              }
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 16,
        "expr": [
          {
            "match": {
              "op": "in",
              "left": {
                "ct": {
                  "key": "state"
                }
              },
              "right": "established"
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 17,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "meta": {
                  "key": "nfproto"
                }
              },
              "right": "ipv4"
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 18,
        "expr": [
          {
            "jump": {
              "target": "other"
            }
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "forward",
        "handle": 19,
        "comment": "web",
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.1.0.0",
                  "len": 24
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "daddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.9.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "sport"
                }
              },
              "right": {
                "range": [
                  1024,
                  65535
                ]
              }
            }
          },
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 80
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "other",
        "handle": 20,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.5.0.0",
                  "len": 16
                }
              }
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "rule": {
        "family": "inet",
        "table": "filter",
        "chain": "input",
        "handle": 21,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "tcp",
                  "field": "dport"
                }
              },
              "right": 22
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "table": {
        "family": "ip6",
        "name": "filter6",
        "handle": 2
      }
    },
    {
      "chain": {
        "family": "ip6",
        "table": "filter6",
        "name": "forward",
        "handle": 1,
        "type": "filter",
        "hook": "forward",
        "prio": 10,
        "policy": "accept"
      }
    },
    {
      "rule": {
        "family": "ip6",
        "table": "filter6",
        "chain": "forward",
        "handle": 2,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "udp",
                  "field": "dport"
                }
              },
              "right": 123
            }
          },
          {
            "drop": null
          }
        ]
      }
    },
    {
      "table": {
        "family": "ip",
        "name": "mangle",
        "handle": 3
      }
    },
    {
      "chain": {
        "family": "ip",
        "table": "mangle",
        "name": "prerouting",
        "handle": 1,
        "type": "filter",
        "hook": "prerouting",
        "prio": -150,
        "policy": "accept"
      }
    },
    {
      "rule": {
        "family": "ip",
        "table": "mangle",
        "chain": "prerouting",
        "handle": 2,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ip",
                  "field": "saddr"
                }
              },
              "right": {
                "prefix": {
                  "addr": "10.0.0.0",
                  "len": 8
                }
              }
            }
          },
          {
            "accept": null
          }
        ]
      }
    },
    {
      "table": {
        "family": "bridge",
        "name": "br",
        "handle": 4
      }
    },
    {
      "chain": {
        "family": "bridge",
        "table": "br",
        "name": "forward",
        "handle": 1,
        "type": "filter",
        "hook": "forward",
        "prio": 0,
        "policy": "accept"
      }
    },
    {
      "rule": {
        "family": "bridge",
        "table": "br",
        "chain": "forward",
        "handle": 2,
        "expr": [
          {
            "match": {
              "op": "==",
              "left": {
                "payload": {
                  "protocol": "ether",
                  "field": "type"
                }
              },
              "right": "ip"
            }
          },
          {
            "accept": null
          }
        ]
      }
    }
  ]
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  test('captured samples are iproute2 / nft JSON', () => {
    for (const dump of [LINKS, ROUTES4, ROUTES6, NEIGHBOURS]) assert.ok(Array.isArray(dump) && dump.length > 0);
    for (const dump of [NFT_SIMPLE, NFT_SUBSET]) assert.ok(typeof dump === 'object' && dump !== null && 'nftables' in dump);
  });
}
