ByJ
‡≈d,}Ec†ÿt