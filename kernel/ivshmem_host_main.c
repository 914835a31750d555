// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_host.ko: the host kernel as one more peer of an ivshmem region,
 * with no change to QEMU or KVM. /dev/ivshmem-host takes the region's
 * shmem/memfd fd and the peers' eventfds from user space
 * (include/uapi/linux/ivshmem_host.h); host modules use the region through
 * <linux/ivshmem_host.h>.
 *
 * One open file holds at most one region, and the region lives at most as
 * long as that file: release() removes it (ivshmem_host_region.c), and so
 * does a hole punched in its memfd (ivshmem_host_watch.c).
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "ivshmem_compat.h"
#include "ivshmem_host_priv.h"

/* One open /dev/ivshmem-host. */
struct ivshmem_host_file {
	struct mutex lock;		/* serialises ATTACH against the others */
	struct ivshmem_host_region *region;	/* NULL until ATTACH */
};

/* misc_open() leaves the miscdevice in private_data; ours replaces it. */
static int ivshmem_host_open(struct inode *inode, struct file *filp)
{
	struct ivshmem_host_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	filp->private_data = f;
	return stream_open(inode, filp);
}

static int ivshmem_host_release(struct inode *inode, struct file *filp)
{
	struct ivshmem_host_file *f = filp->private_data;

	if (f->region) {
		ivshmem_host_remove(f->region);
		ivshmem_host_put(f->region);
	}
	kfree(f);
	return 0;
}

static int ioctl_attach(struct ivshmem_host_file *f, void __user *uarg)
{
	struct ivshmem_host_attach req;
	struct ivshmem_host_region *r;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.abi_version > IVSHMEM_HOST_ABI_VERSION)
		return -EPROTO;
	if (!req.abi_version || req.reserved || req.flags & ~IVSHMEM_HOST_REQUIRE_SEALS ||
	    req.own_id > IVSHMEM_HOST_MAX_PEER || !req.nvectors ||
	    req.nvectors > IVSHMEM_HOST_MAX_VECTORS || !req.name[0] ||
	    strnlen(req.name, sizeof(req.name)) == sizeof(req.name))
		return -EINVAL;
	if (f->region)
		return -EBUSY;
	r = ivshmem_host_attach(&req);
	if (IS_ERR(r))
		return PTR_ERR(r);
	req.size = r->size;
	if (copy_to_user(uarg, &req, sizeof(req))) {
		ivshmem_host_remove(r);
		ivshmem_host_put(r);
		return -EFAULT;
	}
	f->region = r;
	return 0;
}

static int ioctl_bind_peer(struct ivshmem_host_region *r, void __user *uarg)
{
	struct ivshmem_host_bind_peer req;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	mutex_lock(&r->lock);
	ret = ivshmem_host_bind_peer(r, req.peer, req.vector, req.fd);
	mutex_unlock(&r->lock);
	return ret;
}

static int ioctl_bind_own(struct ivshmem_host_region *r, void __user *uarg)
{
	struct ivshmem_host_bind_own req;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	mutex_lock(&r->lock);
	ret = ivshmem_host_bind_own(r, req.vector, req.fd);
	mutex_unlock(&r->lock);
	return ret;
}

static int ioctl_ring(struct ivshmem_host_region *r, void __user *uarg)
{
	struct ivshmem_host_ring req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.peer > IVSHMEM_HOST_MAX_PEER || req.vector >= r->nvectors)
		return -EINVAL;
	return ivshmem_host_ring(r, req.peer, req.vector);
}

static int ioctl_peer(struct ivshmem_host_region *r, void __user *uarg)
{
	struct ivshmem_host_peer_change req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved[0] || req.reserved[1])
		return -EINVAL;
	return ivshmem_host_peer_change(r, req.peer, req.event);
}

static int ioctl_info(struct ivshmem_host_region *r, void __user *uarg)
{
	struct ivshmem_host_info info;
	int ret;

	ret = ivshmem_host_info(r, &info);
	if (ret)
		return ret;
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long ivshmem_host_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct ivshmem_host_file *f = filp->private_data;
	void __user *uarg = (void __user *)arg;
	struct ivshmem_host_region *r;
	long ret;

	mutex_lock(&f->lock);
	if (cmd == IVSHMEM_HOST_IOCTL_ATTACH) {
		ret = ioctl_attach(f, uarg);
		goto out_unlock;
	}
	r = f->region;
	if (!r) {
		ret = -ENODEV;
		goto out_unlock;
	}
	switch (cmd) {
	case IVSHMEM_HOST_IOCTL_BIND_PEER:
		ret = ioctl_bind_peer(r, uarg);
		break;
	case IVSHMEM_HOST_IOCTL_BIND_OWN:
		ret = ioctl_bind_own(r, uarg);
		break;
	case IVSHMEM_HOST_IOCTL_RING:
		ret = ioctl_ring(r, uarg);
		break;
	case IVSHMEM_HOST_IOCTL_INFO:
		ret = ioctl_info(r, uarg);
		break;
	case IVSHMEM_HOST_IOCTL_PEER:
		ret = ioctl_peer(r, uarg);
		break;
	default:
		ret = -ENOTTY;
	}
out_unlock:
	mutex_unlock(&f->lock);
	return ret;
}

static const struct file_operations ivshmem_host_fops = {
	.owner		= THIS_MODULE,
	.open		= ivshmem_host_open,
	.release	= ivshmem_host_release,
	.unlocked_ioctl	= ivshmem_host_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice ivshmem_host_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "ivshmem-host",
	.fops	= &ivshmem_host_fops,
	.mode	= 0600,
};

static int __init ivshmem_host_init(void)
{
	int ret;

	ret = ivshmem_host_watch_init();
	if (ret)
		return ret;
	ret = misc_register(&ivshmem_host_misc);
	if (ret)
		ivshmem_host_watch_exit();
	return ret;
}

/* No file is open (each holds a module reference): every region is removed. */
static void __exit ivshmem_host_exit(void)
{
	misc_deregister(&ivshmem_host_misc);
	ivshmem_host_watch_exit();
}

module_init(ivshmem_host_init);
module_exit(ivshmem_host_exit);

MODULE_DESCRIPTION("ivshmem host-kernel peer: shmem regions and eventfd doorbells");
MODULE_AUTHOR("ivshmem project");
MODULE_LICENSE("GPL");
