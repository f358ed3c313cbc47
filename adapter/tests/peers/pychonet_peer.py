"""An independent ECHONET Lite controller (pychonet, from PyPI) against
Musubi's simulator: discovery, property maps, get and set on the air
conditioner and the smart meter. Prints one JSON object with what it saw;
the Rust test decides whether that is right.

usage: python3 pychonet_peer.py DEVICE_IP LOCAL_IP
"""

import asyncio
import json
import sys

from pychonet import ECHONETAPIClient, HomeAirConditioner, LowVoltageSmartElectricEnergyMeter
from pychonet.lib.const import ENL_GETMAP, ENL_SETMAP, ENL_STATMAP
from pychonet.lib.udpserver import UDPServer


async def main(device, local):
    loop = asyncio.get_running_loop()
    udp = UDPServer(local_ip=local)
    udp.run(local, 3610, loop=loop)
    api = ECHONETAPIClient(server=udp)
    api._message_timeout = 30  # 3 s per request
    out = {"discovered": bool(await api.discover(device))}
    inst = api._state.get(device, {}).get("instances", {})
    out["instances"] = sorted(f"{g:02x}{c:02x}{i:02x}" for g in inst for c in inst[g] for i in inst[g][c])
    out["uid"] = api._state.get(device, {}).get("uid")
    out["manufacturer"] = api._state.get(device, {}).get("manufacturer")
    await api.getAllPropertyMaps(device, 0x01, 0x30, 0x01)
    await api.getAllPropertyMaps(device, 0x02, 0x88, 0x01)
    ac_state = inst[0x01][0x30][0x01]
    out["ac_get_map"] = sorted(ac_state.get(ENL_GETMAP, []))
    out["ac_set_map"] = sorted(ac_state.get(ENL_SETMAP, []))
    out["ac_status_map"] = sorted(ac_state.get(ENL_STATMAP, []))
    ac = HomeAirConditioner(device, api)
    out["room_temperature"] = await ac.getRoomTemperature()
    out["target_before"] = await ac.getOperationalTemperature()
    out["set_accepted"] = await ac.setOperationalTemperature(22)
    out["target_after"] = await ac.getOperationalTemperature()
    out["mode"] = await ac.getMode()
    meter = LowVoltageSmartElectricEnergyMeter(device, api)
    out["meter_get_map"] = sorted(inst[0x02][0x88][0x01].get(ENL_GETMAP, []))
    out["instantaneous_power"] = await meter.update(0xE7)
    out["cumulative_energy"] = await meter.update(0xE0)
    print(json.dumps(out, default=str))
    udp.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
