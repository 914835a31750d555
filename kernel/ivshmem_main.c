// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem.ko: a PCI driver for QEMU's ivshmem-plain and ivshmem-doorbell
 * devices (1af4:1110). Each device becomes /dev/ivshmemN:
 *   - mmap gives the shared memory (BAR2) as write-back cacheable memory, not
 *     the uncached mapping sysfs resource2 or VFIO give;
 *   - ioctls report the device, ring doorbells and deliver MSI-X interrupts
 *     (include/uapi/linux/ivshmem.h, ivshmem_irq.c);
 *   - other modules use the same devices through <linux/ivshmem.h>.
 *
 * Hot-unplug: remove() marks the device gone, zaps every user mapping (later
 * accesses fault with SIGBUS instead of reaching a BAR that no longer exists)
 * and frees the hardware; open files keep only the driver's bookkeeping alive
 * and get -ENODEV.
 */
#include <linux/cdev.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "ivshmem_compat.h"
#include "ivshmem_priv.h"

#define IVSHMEM_MAX_DEVICES	256

static dev_t ivshmem_devt;
static struct cdev ivshmem_cdev;
static struct class *ivshmem_class;
/* index -> device, for open() and ivshmem_dev_get(); entries hold no reference */
static DEFINE_IDR(ivshmem_idr);
static DEFINE_MUTEX(ivshmem_idr_lock);

void ivshmem_dev_release(struct kref *ref)
{
	struct ivshmem_dev *idev = container_of(ref, struct ivshmem_dev, ref);

	pci_dev_put(idev->pdev);
	kfree(idev->vectors);
	kfree(idev);
}

/* ---- char device ------------------------------------------------------------ */

static int ivshmem_open(struct inode *inode, struct file *filp)
{
	struct ivshmem_dev *idev;
	struct ivshmem_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	mutex_lock(&ivshmem_idr_lock);
	idev = idr_find(&ivshmem_idr, iminor(inode));
	if (idev)
		kref_get(&idev->ref);
	mutex_unlock(&ivshmem_idr_lock);
	if (!idev) {
		kfree(f);
		return -ENODEV;
	}
	f->idev = idev;
	f->filp = filp;
	mutex_lock(&idev->files_lock);
	list_add(&f->node, &idev->files);
	mutex_unlock(&idev->files_lock);
	filp->private_data = f;
	return stream_open(inode, filp);
}

static int ivshmem_release(struct inode *inode, struct file *filp)
{
	struct ivshmem_file *f = filp->private_data;
	struct ivshmem_dev *idev = f->idev;

	ivshmem_irq_release_file(idev, filp);
	mutex_lock(&idev->files_lock);
	list_del(&f->node);
	mutex_unlock(&idev->files_lock);
	kfree(f);
	kref_put(&idev->ref, ivshmem_dev_release);
	return 0;
}

/*
 * Pages are inserted on fault rather than at mmap time: a fault runs with the
 * VMA already linked into the file's mapping, so remove() either waits for it
 * (idev->lock) or zaps what it inserted. The PFNs get the cache mode of the
 * kernel's memremap(MEMREMAP_WB) reservation: write-back.
 */
static vm_fault_t ivshmem_vm_fault(struct vm_fault *vmf)
{
	struct ivshmem_file *f = vmf->vma->vm_file->private_data;
	struct ivshmem_dev *idev = f->idev;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	down_read(&idev->lock);
	if (!idev->gone && vmf->pgoff < (idev->size >> PAGE_SHIFT))
		ret = vmf_insert_pfn(vmf->vma, vmf->address, PHYS_PFN(idev->mem_phys) + vmf->pgoff);
	up_read(&idev->lock);
	return ret;
}

static const struct vm_operations_struct ivshmem_vm_ops = {
	.fault = ivshmem_vm_fault,
};

static int ivshmem_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct ivshmem_file *f = filp->private_data;
	struct ivshmem_dev *idev = f->idev;
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 pages;
	int ret = 0;

	/*
	 * A private (copy-on-write) mapping of shared memory makes no sense.
	 * VM_MAYSHARE, not VM_SHARED: mmap clears VM_SHARED for a read-only
	 * MAP_SHARED mapping of a file opened O_RDONLY.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	down_read(&idev->lock);
	pages = idev->size >> PAGE_SHIFT;
	if (idev->gone) {
		ret = -ENODEV;
	} else if (vma->vm_pgoff >= pages || (len >> PAGE_SHIFT) > pages - vma->vm_pgoff) {
		ret = -EINVAL;
	} else {
		vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
		vma->vm_ops = &ivshmem_vm_ops;
	}
	up_read(&idev->lock);
	return ret;
}

static void ivshmem_fill_info(struct ivshmem_dev *idev, struct ivshmem_info *info)
{
	memset(info, 0, sizeof(*info));
	info->abi_version = IVSHMEM_ABI_VERSION;
	info->flags = idev->doorbell ? IVSHMEM_INFO_DOORBELL : 0;
	info->size = idev->size;
	info->ivposition = idev->ivposition;
	info->vectors = idev->nvectors;
	info->index = idev->index;
	strscpy(info->pci_addr, pci_name(idev->pdev), sizeof(info->pci_addr));
}

/* Write the doorbell register; any context. */
static int ivshmem_ring_doorbell(struct ivshmem_dev *idev, u32 peer, u32 vector)
{
	unsigned long flags;
	int ret = 0;

	if (peer > 0xffff || vector > 0xff)
		return -EINVAL;
	spin_lock_irqsave(&idev->reg_lock, flags);
	if (idev->gone)
		ret = -ENODEV;
	else if (!idev->doorbell)
		ret = -EOPNOTSUPP;
	else
		writel(peer << 16 | vector, idev->regs + IVSHMEM_REG_DOORBELL);
	spin_unlock_irqrestore(&idev->reg_lock, flags);
	return ret;
}

static long ivshmem_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct ivshmem_file *f = filp->private_data;
	struct ivshmem_dev *idev = f->idev;
	void __user *uarg = (void __user *)arg;
	struct ivshmem_info info;
	struct ivshmem_ring ring;
	long ret;

	if (_IOC_TYPE(cmd) != IVSHMEM_IOCTL_MAGIC)
		return -ENOTTY;
	down_read(&idev->lock);
	if (idev->gone) {
		ret = -ENODEV;
		goto out;
	}
	switch (cmd) {
	case IVSHMEM_IOCTL_INFO:
		ivshmem_fill_info(idev, &info);
		ret = copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
		break;
	case IVSHMEM_IOCTL_RING:
		if (copy_from_user(&ring, uarg, sizeof(ring))) {
			ret = -EFAULT;
			break;
		}
		ret = ring.reserved ? -EINVAL : ivshmem_ring_doorbell(idev, ring.peer, ring.vector);
		break;
	case IVSHMEM_IOCTL_VECTOR_FD:
		ret = ivshmem_ioctl_vector_fd(idev, uarg);
		break;
	case IVSHMEM_IOCTL_BIND_EVENTFD:
		ret = ivshmem_ioctl_bind_eventfd(idev, filp, uarg);
		break;
	default:
		ret = -ENOTTY;
	}
out:
	up_read(&idev->lock);
	return ret;
}

static const struct file_operations ivshmem_fops = {
	.owner = THIS_MODULE,
	.open = ivshmem_open,
	.release = ivshmem_release,
	.mmap = ivshmem_mmap,
	.unlocked_ioctl = ivshmem_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	/* no .llseek: stream_open() makes lseek fail with -ESPIPE */
};

/* ---- sysfs: /sys/class/ivshmem/ivshmemN/ ------------------------------------ */

static ssize_t size_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivshmem_dev *idev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", idev->size);
}
static DEVICE_ATTR_RO(size);

static ssize_t ivposition_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivshmem_dev *idev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", idev->ivposition);
}
static DEVICE_ATTR_RO(ivposition);

static ssize_t vectors_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivshmem_dev *idev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", idev->nvectors);
}
static DEVICE_ATTR_RO(vectors);

static ssize_t has_doorbell_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivshmem_dev *idev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%d\n", idev->doorbell);
}
static DEVICE_ATTR_RO(has_doorbell);

/*
 * The region's name from the layout header (docs/layout.md): magic
 * "IVSHMLAY" at 0, version 1 (u32 LE) at 8, a NUL-terminated name in the 64
 * bytes at 64. Peers write the header at any time, so it is copied once and
 * only the copy is checked. An empty line: no header or unnamed.
 */
#define IVSHMEM_LAYOUT_MAGIC	"IVSHMLAY"
#define IVSHMEM_LAYOUT_NAME	64
#define IVSHMEM_LAYOUT_NAME_LEN	64

static ssize_t name_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivshmem_dev *idev = dev_get_drvdata(dev);
	u8 hdr[IVSHMEM_LAYOUT_NAME + IVSHMEM_LAYOUT_NAME_LEN];

	if (idev->size < sizeof(hdr))
		return sysfs_emit(buf, "\n");
	memcpy(hdr, idev->mem, sizeof(hdr));
	if (memcmp(hdr, IVSHMEM_LAYOUT_MAGIC, 8) != 0)
		return sysfs_emit(buf, "\n");
	if (get_unaligned_le32(hdr + 8) != 1 ||
	    !memchr(hdr + IVSHMEM_LAYOUT_NAME, 0, IVSHMEM_LAYOUT_NAME_LEN))
		return -EBADMSG;	/* a corrupt or unknown header */
	return sysfs_emit(buf, "%s\n", (char *)hdr + IVSHMEM_LAYOUT_NAME);
}
static DEVICE_ATTR_RO(name);

static struct attribute *ivshmem_attrs[] = {
	&dev_attr_name.attr,
	&dev_attr_size.attr,
	&dev_attr_ivposition.attr,
	&dev_attr_vectors.attr,
	&dev_attr_has_doorbell.attr,
	NULL,
};
ATTRIBUTE_GROUPS(ivshmem);

/* ---- PCI driver --------------------------------------------------------------- */

static int ivshmem_map(struct ivshmem_dev *idev)
{
	struct pci_dev *pdev = idev->pdev;
	int ret;

	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	idev->regs = pci_iomap(pdev, IVSHMEM_BAR_REGS, 0);
	idev->mem_phys = pci_resource_start(pdev, IVSHMEM_BAR_MEM);
	idev->size = pci_resource_len(pdev, IVSHMEM_BAR_MEM);
	if (!idev->regs || !idev->size) {
		pci_err(pdev, "BAR0 or BAR2 missing\n");
		ret = -ENODEV;
		goto err_unmap;
	}
	/* BAR2 is RAM on the host side: map it write-back, not as MMIO. */
	idev->mem = memremap(idev->mem_phys, idev->size, MEMREMAP_WB);
	if (!idev->mem) {
		pci_err(pdev, "cannot map %llu bytes of BAR2 write-back\n", idev->size);
		ret = -ENOMEM;
		goto err_unmap;
	}
	/* MSI-X messages are DMA writes: without bus mastering QEMU drops them. */
	pci_set_master(pdev);
	idev->ivposition = readl(idev->regs + IVSHMEM_REG_IVPOSITION);
	return 0;

err_unmap:
	if (idev->regs)
		pci_iounmap(pdev, idev->regs);
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return ret;
}

static void ivshmem_unmap(struct ivshmem_dev *idev)
{
	struct pci_dev *pdev = idev->pdev;

	pci_clear_master(pdev);
	memunmap(idev->mem);
	pci_iounmap(pdev, idev->regs);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
}

static int ivshmem_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct ivshmem_dev *idev;
	int ret;

	idev = kzalloc(sizeof(*idev), GFP_KERNEL);
	if (!idev)
		return -ENOMEM;
	kref_init(&idev->ref);
	idev->pdev = pci_dev_get(pdev);
	init_rwsem(&idev->lock);
	spin_lock_init(&idev->reg_lock);
	mutex_init(&idev->files_lock);
	INIT_LIST_HEAD(&idev->files);

	mutex_lock(&ivshmem_idr_lock);
	ret = idr_alloc(&ivshmem_idr, NULL, 0, IVSHMEM_MAX_DEVICES, GFP_KERNEL);
	mutex_unlock(&ivshmem_idr_lock);
	if (ret < 0)
		goto err_free;
	idev->index = ret;

	ret = ivshmem_map(idev);
	if (ret)
		goto err_idr;
	ret = ivshmem_irq_setup(idev);
	if (ret)
		goto err_unmap;
	idev->doorbell = idev->nvectors > 0;
	pci_set_drvdata(pdev, idev);

	idev->chardev = device_create_with_groups(ivshmem_class, &pdev->dev,
						  MKDEV(MAJOR(ivshmem_devt), idev->index), idev,
						  ivshmem_groups, "ivshmem%u", idev->index);
	if (IS_ERR(idev->chardev)) {
		ret = PTR_ERR(idev->chardev);
		goto err_irq;
	}
	/* Publish last: from here on open() and ivshmem_dev_get() find it. */
	mutex_lock(&ivshmem_idr_lock);
	idr_replace(&ivshmem_idr, idev, idev->index);
	mutex_unlock(&ivshmem_idr_lock);
	pci_info(pdev, "/dev/ivshmem%u: %llu bytes, %s, %u vectors, IVPosition %u\n",
		 idev->index, idev->size, idev->doorbell ? "doorbell" : "plain",
		 idev->nvectors, idev->ivposition);
	return 0;

err_irq:
	ivshmem_irq_teardown(idev);
err_unmap:
	ivshmem_unmap(idev);
err_idr:
	mutex_lock(&ivshmem_idr_lock);
	idr_remove(&ivshmem_idr, idev->index);
	mutex_unlock(&ivshmem_idr_lock);
err_free:
	kref_put(&idev->ref, ivshmem_dev_release);
	return ret;
}

static void ivshmem_remove(struct pci_dev *pdev)
{
	struct ivshmem_dev *idev = pci_get_drvdata(pdev);
	struct ivshmem_file *f;
	ivshmem_remove_cb cb;
	void *data;

	/* No new opens or kernel users. */
	mutex_lock(&ivshmem_idr_lock);
	idr_remove(&ivshmem_idr, idev->index);
	mutex_unlock(&ivshmem_idr_lock);

	/* Kernel users stop touching idev->mem before it goes away. */
	mutex_lock(&idev->files_lock);
	idev->removing = true;
	cb = idev->remove_cb;
	data = idev->remove_data;
	idev->remove_cb = NULL;
	mutex_unlock(&idev->files_lock);
	if (cb)
		cb(data);

	device_destroy(ivshmem_class, MKDEV(MAJOR(ivshmem_devt), idev->index));

	/* Wait for every file operation in flight, then refuse new ones. */
	down_write(&idev->lock);
	spin_lock_irq(&idev->reg_lock);
	idev->gone = true;
	spin_unlock_irq(&idev->reg_lock);
	up_write(&idev->lock);

	/* Revoke user mappings: a later access faults and gets SIGBUS. */
	mutex_lock(&idev->files_lock);
	list_for_each_entry(f, &idev->files, node)
		unmap_mapping_range(f->filp->f_mapping, 0, 0, 1);
	mutex_unlock(&idev->files_lock);

	ivshmem_irq_teardown(idev);
	ivshmem_unmap(idev);
	pci_set_drvdata(pdev, NULL);
	kref_put(&idev->ref, ivshmem_dev_release);
}

static const struct pci_device_id ivshmem_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ivshmem_ids);

static struct pci_driver ivshmem_driver = {
	.name = "ivshmem",
	.id_table = ivshmem_ids,
	.probe = ivshmem_probe,
	.remove = ivshmem_remove,
};

/* ---- in-kernel API ------------------------------------------------------------ */

struct ivshmem_dev *ivshmem_dev_get(unsigned int index)
{
	struct ivshmem_dev *idev;

	mutex_lock(&ivshmem_idr_lock);
	idev = idr_find(&ivshmem_idr, index);
	if (idev)
		kref_get(&idev->ref);
	mutex_unlock(&ivshmem_idr_lock);
	return idev ? idev : ERR_PTR(-ENODEV);
}
EXPORT_SYMBOL_GPL(ivshmem_dev_get);

void ivshmem_dev_put(struct ivshmem_dev *idev)
{
	kref_put(&idev->ref, ivshmem_dev_release);
}
EXPORT_SYMBOL_GPL(ivshmem_dev_put);

int ivshmem_dev_region(struct ivshmem_dev *idev, void **addr, u64 *size)
{
	int ret = 0;

	down_read(&idev->lock);
	if (idev->gone) {
		ret = -ENODEV;
	} else {
		*addr = idev->mem;
		*size = idev->size;
	}
	up_read(&idev->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_dev_region);

int ivshmem_dev_info(struct ivshmem_dev *idev, struct ivshmem_info *info)
{
	int ret = 0;

	down_read(&idev->lock);
	if (idev->gone)
		ret = -ENODEV;
	else
		ivshmem_fill_info(idev, info);
	up_read(&idev->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_dev_info);

int ivshmem_dev_ring(struct ivshmem_dev *idev, u16 peer, u16 vector)
{
	return ivshmem_ring_doorbell(idev, peer, vector);
}
EXPORT_SYMBOL_GPL(ivshmem_dev_ring);

int ivshmem_dev_set_remove_callback(struct ivshmem_dev *idev, ivshmem_remove_cb cb,
				    void *data)
{
	int ret = 0;

	mutex_lock(&idev->files_lock);
	if (idev->removing && cb) {
		ret = -ENODEV;
	} else if (cb && idev->remove_cb) {
		ret = -EBUSY;
	} else {
		idev->remove_cb = cb;
		idev->remove_data = cb ? data : NULL;
	}
	mutex_unlock(&idev->files_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_dev_set_remove_callback);

/* ---- module ---------------------------------------------------------------------- */

static int __init ivshmem_init(void)
{
	int ret;

	/* The uapi layout is ABI: the same on 32- and 64-bit, never changed in place. */
	BUILD_BUG_ON(sizeof(struct ivshmem_info) != 80);
	BUILD_BUG_ON(sizeof(struct ivshmem_ring) != 16);
	BUILD_BUG_ON(sizeof(struct ivshmem_vector_fd) != 16);
	BUILD_BUG_ON(sizeof(struct ivshmem_eventfd) != 16);

	ret = alloc_chrdev_region(&ivshmem_devt, 0, IVSHMEM_MAX_DEVICES, "ivshmem");
	if (ret)
		return ret;
	cdev_init(&ivshmem_cdev, &ivshmem_fops);
	ret = cdev_add(&ivshmem_cdev, ivshmem_devt, IVSHMEM_MAX_DEVICES);
	if (ret)
		goto err_region;
	ivshmem_class = class_create("ivshmem");
	if (IS_ERR(ivshmem_class)) {
		ret = PTR_ERR(ivshmem_class);
		goto err_cdev;
	}
	ret = pci_register_driver(&ivshmem_driver);
	if (ret)
		goto err_class;
	return 0;

err_class:
	class_destroy(ivshmem_class);
err_cdev:
	cdev_del(&ivshmem_cdev);
err_region:
	unregister_chrdev_region(ivshmem_devt, IVSHMEM_MAX_DEVICES);
	return ret;
}

static void __exit ivshmem_exit(void)
{
	pci_unregister_driver(&ivshmem_driver);
	class_destroy(ivshmem_class);
	cdev_del(&ivshmem_cdev);
	unregister_chrdev_region(ivshmem_devt, IVSHMEM_MAX_DEVICES);
	idr_destroy(&ivshmem_idr);
}

module_init(ivshmem_init);
module_exit(ivshmem_exit);

MODULE_DESCRIPTION("QEMU ivshmem: cacheable shared memory, doorbells and MSI-X interrupts");
MODULE_AUTHOR("ivshmem project");
MODULE_LICENSE("GPL");
